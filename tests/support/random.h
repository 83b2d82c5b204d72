// A small portable random generator (splitmix64), so that a case seeded by its index draws the
// same values on every machine and standard library.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

namespace polyhead::testing {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform in [lo, hi], inclusive.
  int64_t uniform_int(int64_t lo, int64_t hi) {
    return lo + int64_t(next() % uint64_t(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }
  // Standard normal, drawn in fp32 (Box-Muller).
  float normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  template <typename T>
  const T& pick(const std::vector<T>& values) {
    return values[size_t(uniform_int(0, int64_t(values.size()) - 1))];
  }

 private:
  uint64_t state_;
};

// The seed of case `index` of a suite: the suite name salts it so suites draw different data.
inline uint64_t case_seed(std::string_view suite, uint64_t index) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : suite) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  Rng rng(h ^ (index * 0x9e3779b97f4a7c15ull));
  return rng.next();
}

}  // namespace polyhead::testing
