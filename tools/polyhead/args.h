// Command-line options of one `polyhead` command: `--name value`, `--name=value` and flags.
// Every malformed argument throws UsageError, which main() prints as one line (exit code 2).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace polyhead::cli {

// A bad argument, an unreadable or malformed file: anything the user can fix.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

struct OptionDef {
  std::string_view name;  // without the leading "--"
  bool takes_value = true;
};

class Args {
 public:
  // Parses `argv` (the words after the command name) against `defs`. `--help`/`-h` is always
  // accepted and sets help(). Throws UsageError for unknown options, missing values, repeated
  // options and positional words.
  static Args parse(std::span<const std::string_view> argv, std::span<const OptionDef> defs);

  bool help() const { return help_; }
  bool has(std::string_view name) const;
  std::optional<std::string> get(std::string_view name) const;
  std::string str(std::string_view name, std::string_view fallback) const;
  // Strict numbers: the whole value must parse and lie in [lo, hi].
  int64_t integer(std::string_view name, int64_t fallback, int64_t lo, int64_t hi) const;
  std::optional<double> number(std::string_view name) const;
  // The value must be one of `choices`.
  std::string choice(std::string_view name, std::string_view fallback,
                     std::span<const std::string_view> choices) const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
  bool help_ = false;
};

// Number parsing shared by the options and other text inputs; `what` names the value in errors.
int64_t parse_integer(std::string_view text, std::string_view what);
double parse_number(std::string_view text, std::string_view what);

}  // namespace polyhead::cli
