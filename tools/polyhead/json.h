// A small JSON document model for the program's own files: benchmark grids (bench/grids/),
// result files (`bench --json`, read back by `bench compare`) and the export for the peers.
// Parsing errors throw UsageError naming the origin, line and column.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polyhead::cli {

class Json {
 public:
  enum class Type : uint8_t { null, boolean, number, string, array, object };
  using Member = std::pair<std::string, Json>;

  Json() = default;
  static Json parse(std::string_view text, const std::string& origin);
  static Json parse_file(const std::string& path);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_number() const { return type_ == Type::number; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }

  // Typed access; a wrong type throws UsageError naming `what` and the value's origin line.
  bool boolean(std::string_view what) const;
  double number(std::string_view what) const;
  int64_t integer(std::string_view what) const;  // must be a whole number
  const std::string& string(std::string_view what) const;
  const std::vector<Json>& array(std::string_view what) const;
  const std::vector<Member>& object(std::string_view what) const;

  // Object member by key, or nullptr (also for non-objects).
  const Json* find(std::string_view key) const;
  // "FILE:LINE" of the value, for messages.
  std::string where() const;

 private:
  friend class JsonParser;
  [[noreturn]] void type_error(std::string_view what, std::string_view expected) const;

  Type type_ = Type::null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Json> array_;
  std::vector<Member> object_;
  std::shared_ptr<const std::string> origin_;
  int line_ = 0;
};

// Writing: quoted strings and numbers that read back exactly (null for NaN and infinities).
std::string json_quote(std::string_view s);
std::string json_number(double x);
// A value written back as compact JSON.
std::string json_write(const Json& v);

}  // namespace polyhead::cli
