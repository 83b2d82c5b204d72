// polyhead::Error and the boundary-check macro used everywhere in the library.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace polyhead {

// Every refusal of the library is an Error whose message names the argument, the value found
// and what is allowed. The library never aborts and never prints.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Args>
[[noreturn]] void throw_error(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}
}  // namespace detail

}  // namespace polyhead

// POLYHEAD_CHECK(cond, "k.shape[2] = ", hkv, " does not divide q heads ", hq);
#define POLYHEAD_CHECK(cond, ...)                   \
  do {                                              \
    if (!(cond)) [[unlikely]]                       \
      ::polyhead::detail::throw_error(__VA_ARGS__); \
  } while (0)

#define POLYHEAD_FAIL(...) ::polyhead::detail::throw_error(__VA_ARGS__)
