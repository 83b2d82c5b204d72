// The commands of the `polyhead` program. Each takes the words after its name, prints its
// results on stdout and returns the exit code; bad arguments and files throw UsageError and
// library refusals throw polyhead::Error, which main() turns into one line on stderr (exit 2).
#pragma once

#include <span>
#include <string_view>

namespace polyhead::cli {

using Words = std::span<const std::string_view>;

int cmd_info(Words args);
int cmd_attend(Words args);
int cmd_check(Words args);  // 1 when any case fails
int cmd_bench(Words args);

}  // namespace polyhead::cli
