// MaskSpec text form: the grammar shared by the CLI, the Python module and the benchmarks.
#include <charconv>
#include <string>
#include <vector>

#include "polyhead/error.h"
#include "polyhead/mask.h"

namespace polyhead {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

int64_t parse_int(std::string_view text, std::string_view spec, std::string_view field,
                  std::string_view usage) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  POLYHEAD_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(), "mask '",
                 spec, "': ", field, " = '", text, "' is not an integer (", usage, ")");
  return value;
}

Alignment parse_alignment(std::string_view text, std::string_view spec, std::string_view usage) {
  if (text == "topleft") return Alignment::top_left;
  if (text == "bottomright") return Alignment::bottom_right;
  POLYHEAD_FAIL("mask '", spec, "': alignment '", text, "' is not one of topleft, bottomright (",
                usage, ")");
}

constexpr std::string_view kKinds = "none, causal[:topleft], window:LEFT,RIGHT[,topleft]";

}  // namespace

Alignment MaskSpec::alignment() const {
  if (const auto* w = get_if<WindowMask>()) return w->align;
  return Alignment::bottom_right;
}

std::string MaskSpec::to_string() const {
  return std::visit(Overloaded{
                        [](const NoMask&) { return std::string("none"); },
                        [](const WindowMask& w) {
                          const bool topleft = w.align == Alignment::top_left;
                          if (w.left == -1 && w.right == 0) {
                            return std::string(topleft ? "causal:topleft" : "causal");
                          }
                          return "window:" + std::to_string(w.left) + "," +
                                 std::to_string(w.right) + (topleft ? ",topleft" : "");
                        },
                    },
                    kind_);
}

MaskSpec MaskSpec::parse(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view args = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  const bool has_args = colon != std::string_view::npos;

  if (kind == "none" || kind == "full") {
    POLYHEAD_CHECK(!has_args, "mask '", text, "': 'none' takes no arguments");
    return none();
  }
  if (kind == "causal") {
    constexpr std::string_view usage = "causal or causal:topleft";
    if (!has_args) return causal();
    return causal(parse_alignment(args, text, usage));
  }
  if (kind == "window") {
    constexpr std::string_view usage = "window:LEFT,RIGHT[,topleft] with -1 for unbounded";
    POLYHEAD_CHECK(has_args, "mask '", text, "': missing LEFT,RIGHT (", usage, ")");
    const auto fields = split(args, ',');
    POLYHEAD_CHECK(fields.size() == 2 || fields.size() == 3, "mask '", text, "': expected 2 or 3 ",
                   "fields, got ", fields.size(), " (", usage, ")");
    const int64_t left = parse_int(fields[0], text, "LEFT", usage);
    const int64_t right = parse_int(fields[1], text, "RIGHT", usage);
    POLYHEAD_CHECK(left >= -1, "mask '", text, "': LEFT = ", left, " must be >= -1 (", usage, ")");
    POLYHEAD_CHECK(right >= -1, "mask '", text, "': RIGHT = ", right, " must be >= -1 (", usage,
                   ")");
    Alignment align = Alignment::bottom_right;
    if (fields.size() == 3) align = parse_alignment(fields[2], text, usage);
    return window(left, right, align);
  }
  POLYHEAD_FAIL("mask '", text, "': unknown kind '", kind, "' (one of ", kKinds, ")");
}

}  // namespace polyhead
