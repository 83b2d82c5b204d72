// The program's random numbers: SplitMix64, tiny, and the same sequence on every platform (std
// distributions are not), so that a case drawn from a seed is the same case everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace polyhead::cli {

// SplitMix64's finalizer: a bijective scramble of 64 bits.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a of a name, to derive a seed stream from it.
inline uint64_t name_hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h;
}

// Streams are seeded through mix64 so that nearby seeds do not give shifted copies.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(mix64(seed ^ 0x5eed0f1a77e47105ull)) {}
  Rng(uint64_t seed, uint64_t stream) : Rng(mix64(seed) ^ mix64(~stream)) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ull); }
  int64_t below(int64_t n) { return int64_t(next() % uint64_t(n)); }
  // Uniform in [lo, hi] (inclusive).
  int64_t between(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(int64_t one_in) { return below(one_in) == 0; }
  // Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  // Uniform in [-1, 1).
  double symmetric() { return double(next() >> 11) * 0x1.0p-52 - 1.0; }
  template <typename T, size_t N>
  T pick(const T (&options)[N]) {
    return options[below(int64_t(N))];
  }

 private:
  uint64_t state_;
};

}  // namespace polyhead::cli
