// polyhead: the command-line face of the library. Every figure it prints comes from a public
// library call (DESIGN.md section 1); this file only dispatches and reports errors.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "commands.h"
#include "polyhead/attention.h"
#include "polyhead/error.h"

namespace {

constexpr const char* kUsage = R"(usage: polyhead COMMAND [OPTIONS]

Multi-head attention engine: run, verify and time attention from the command line.

commands:
  info     version, backends, CPU and build facts
  attend   run attention on .npy files (q, k, v -> o, lse)
  check    random problems on every backend against the fp64 reference
  bench    time a benchmark grid (LongCA-bench's masks and the seed papers') on the cpu
           or cuda backend; 'bench compare' sets results beside the peers' 

Run 'polyhead COMMAND --help' for a command's options.
options: --help, --version
exit codes: 0 success, 1 'check' found a failure, 2 bad arguments, files or problems
)";

// One line: messages from files or the library may hold newlines.
void print_error(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "polyhead: error: %s\n", message.c_str());
}

int dispatch(const std::vector<std::string_view>& words) {
  using namespace polyhead::cli;
  if (words.empty()) {
    throw UsageError("missing command (info, attend, check, bench); see 'polyhead --help'");
  }
  const std::string_view command = words[0];
  const Words rest(words.data() + 1, words.size() - 1);
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "--version") {
    std::printf("polyhead %s\n", polyhead::version().c_str());
    return 0;
  }
  if (command == "info") return cmd_info(rest);
  if (command == "attend") return cmd_attend(rest);
  if (command == "check") return cmd_check(rest);
  if (command == "bench") return cmd_bench(rest);
  throw UsageError("unknown command '" + std::string(command) +
                   "' (info, attend, check, bench); see 'polyhead --help'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string_view> words(argv + 1, argv + argc);
    const int code = dispatch(words);
    std::fflush(stdout);
    return code;
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
  } catch (const std::exception& e) {
    print_error(e.what());
  } catch (...) {
    print_error("unknown exception");
  }
  return 2;
}
