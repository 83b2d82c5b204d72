#include "json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "args.h"

namespace polyhead::cli {

// Recursive descent over RFC 8259 JSON; nesting is bounded so that a hostile file cannot
// exhaust the stack.
class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& origin)
      : text_(text), origin_(std::make_shared<const std::string>(origin)) {}

  Json document() {
    Json v = value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& what) const {
    int line = 1, column = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw UsageError(*origin_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                     what);
  }

  // Newlines only occur in whitespace (strings may not hold raw control characters), so the
  // line count is kept here.
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      line_ += text_[pos_] == '\n';
      ++pos_;
    }
  }

  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Json make(Json::Type t) {
    Json v;
    v.type_ = t;
    v.origin_ = origin_;
    v.line_ = line_;
    return v;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end of input");
    const char c = text_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      Json v = make(Json::Type::string);
      v.string_ = string();
      return v;
    }
    for (const bool b : {true, false}) {
      if (consume(b ? "true" : "false")) {
        Json v = make(Json::Type::boolean);
        v.bool_ = b;
        return v;
      }
    }
    if (consume("null")) return make(Json::Type::null);
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail(std::string("unexpected character '") + c + "'");
  }

  Json number() {
    Json v = make(Json::Type::number);
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
    const auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, v.number_);
    if (ec != std::errc() || end != text_.data() + pos_) {
      pos_ = start;
      fail("malformed number");
    }
    return v;
  }

  std::string string() {
    ++pos_;  // the opening quote
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) fail("short \\u escape");
          unsigned code = 0;
          const auto [end, ec] =
              std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, code, 16);
          if (ec != std::errc() || end != text_.data() + pos_ + 4) fail("bad \\u escape");
          pos_ += 4;
          // Basic multilingual plane only (surrogate pairs are not needed by our files).
          if (code < 0x80) {
            out += char(code);
          } else if (code < 0x800) {
            out += char(0xc0 | (code >> 6));
            out += char(0x80 | (code & 0x3f));
          } else {
            out += char(0xe0 | (code >> 12));
            out += char(0x80 | ((code >> 6) & 0x3f));
            out += char(0x80 | (code & 0x3f));
          }
          break;
        }
        default:
          fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  Json array(int depth) {
    Json v = make(Json::Type::array);
    ++pos_;
    skip_space();
    if (consume("]")) return v;
    while (true) {
      v.array_.push_back(value(depth + 1));
      skip_space();
      if (consume("]")) return v;
      if (!consume(",")) fail("expected ',' or ']' in an array");
    }
  }

  Json object(int depth) {
    Json v = make(Json::Type::object);
    ++pos_;
    skip_space();
    if (consume("}")) return v;
    while (true) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a quoted member name");
      std::string key = string();
      for (const Json::Member& m : v.object_) {
        if (m.first == key) fail("member '" + key + "' appears twice");
      }
      skip_space();
      if (!consume(":")) fail("expected ':' after member '" + key + "'");
      v.object_.emplace_back(std::move(key), value(depth + 1));
      skip_space();
      if (consume("}")) return v;
      if (!consume(",")) fail("expected ',' or '}' in an object");
    }
  }

  std::string_view text_;
  std::shared_ptr<const std::string> origin_;
  size_t pos_ = 0;
  int line_ = 1;
};

Json Json::parse(std::string_view text, const std::string& origin) {
  return JsonParser(text, origin).document();
}

Json Json::parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("'" + path + "': cannot open");
  std::ostringstream os;
  os << in.rdbuf();
  return parse(os.str(), path);
}

std::string Json::where() const {
  return (origin_ ? *origin_ : std::string("<json>")) + ":" + std::to_string(line_);
}

void Json::type_error(std::string_view what, std::string_view expected) const {
  static constexpr std::string_view kNames[] = {"null",     "a boolean", "a number",
                                                "a string", "an array",  "an object"};
  throw UsageError(where() + ": " + std::string(what) + " must be " + std::string(expected) +
                   ", not " + std::string(kNames[size_t(type_)]));
}

bool Json::boolean(std::string_view what) const {
  if (type_ != Type::boolean) type_error(what, "true or false");
  return bool_;
}

double Json::number(std::string_view what) const {
  if (type_ != Type::number) type_error(what, "a number");
  return number_;
}

int64_t Json::integer(std::string_view what) const {
  const double x = number(what);
  if (x != std::floor(x) || std::fabs(x) > 9.0e15) type_error(what, "a whole number");
  return int64_t(x);
}

const std::string& Json::string(std::string_view what) const {
  if (type_ != Type::string) type_error(what, "a string");
  return string_;
}

const std::vector<Json>& Json::array(std::string_view what) const {
  if (type_ != Type::array) type_error(what, "an array");
  return array_;
}

const std::vector<Json::Member>& Json::object(std::string_view what) const {
  if (type_ != Type::object) type_error(what, "an object");
  return object_;
}

const Json* Json::find(std::string_view key) const {
  for (const Member& m : object_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return ec == std::errc() ? std::string(buf, end) : std::string("null");
}

std::string json_write(const Json& v) {
  switch (v.type()) {
    case Json::Type::null:
      return "null";
    case Json::Type::boolean:
      return v.boolean("value") ? "true" : "false";
    case Json::Type::number:
      return json_number(v.number("value"));
    case Json::Type::string:
      return json_quote(v.string("value"));
    case Json::Type::array: {
      std::string s = "[";
      for (const Json& x : v.array("value")) s += (s.size() > 1 ? ", " : "") + json_write(x);
      return s + "]";
    }
    case Json::Type::object: {
      std::string s = "{";
      for (const Json::Member& m : v.object("value")) {
        s += (s.size() > 1 ? ", " : "") + json_quote(m.first) + ": " + json_write(m.second);
      }
      return s + "}";
    }
  }
  return "null";
}

}  // namespace polyhead::cli
