#include "args.h"

#include <charconv>
#include <cmath>

namespace polyhead::cli {

Args Args::parse(std::span<const std::string_view> argv, std::span<const OptionDef> defs) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string_view word = argv[i];
    if (word == "--help" || word == "-h") {
      args.help_ = true;
      continue;
    }
    if (!word.starts_with("--") || word.size() == 2) {
      throw UsageError("unexpected argument '" + std::string(word) + "' (options start with --)");
    }
    std::string_view name = word.substr(2);
    std::optional<std::string_view> inline_value;
    if (const size_t eq = name.find('='); eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const OptionDef* def = nullptr;
    for (const OptionDef& d : defs) {
      if (d.name == name) def = &d;
    }
    if (def == nullptr) throw UsageError("unknown option '--" + std::string(name) + "'");
    if (args.values_.count(name) != 0) {
      throw UsageError("option '--" + std::string(name) + "' is given more than once");
    }
    std::string value;
    if (def->takes_value) {
      if (inline_value) {
        value = std::string(*inline_value);
      } else {
        if (i + 1 >= argv.size()) {
          throw UsageError("option '--" + std::string(name) + "' needs a value");
        }
        value = std::string(argv[++i]);
      }
    } else if (inline_value) {
      throw UsageError("option '--" + std::string(name) + "' takes no value");
    }
    args.values_.emplace(std::string(name), std::move(value));
  }
  return args;
}

bool Args::has(std::string_view name) const {
  return values_.find(name) != values_.end();
}

std::optional<std::string> Args::get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::str(std::string_view name, std::string_view fallback) const {
  const auto v = get(name);
  return v ? *v : std::string(fallback);
}

int64_t Args::integer(std::string_view name, int64_t fallback, int64_t lo, int64_t hi) const {
  const auto v = get(name);
  if (!v) return fallback;
  const std::string what = "--" + std::string(name);
  const int64_t x = parse_integer(*v, what);
  if (x < lo || x > hi) {
    throw UsageError(what + " = " + std::to_string(x) + " is out of range [" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]");
  }
  return x;
}

std::optional<double> Args::number(std::string_view name) const {
  const auto v = get(name);
  if (!v) return std::nullopt;
  return parse_number(*v, "--" + std::string(name));
}

std::string Args::choice(std::string_view name, std::string_view fallback,
                         std::span<const std::string_view> choices) const {
  const std::string v = str(name, fallback);
  std::string list;
  for (std::string_view c : choices) {
    if (c == v) return v;
    list += (list.empty() ? "" : ", ") + std::string(c);
  }
  throw UsageError("--" + std::string(name) + " = '" + v + "' is not one of " + list);
}

int64_t parse_integer(std::string_view text, std::string_view what) {
  int64_t x = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(std::string(what) + " = '" + std::string(text) + "' is not an integer");
  }
  return x;
}

double parse_number(std::string_view text, std::string_view what) {
  double x = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(x)) {
    throw UsageError(std::string(what) + " = '" + std::string(text) + "' is not a finite number");
  }
  return x;
}

}  // namespace polyhead::cli
