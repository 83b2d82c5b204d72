// detail::pack_bits (src/core/pack_bits.h), with which the cuda dispatcher turns BlockMap rows
// into the kernels' partial-tile bitmasks, against a bit-by-bit loop: every length up to 128
// (the eight-byte steps and the tail), random and all-ones rows.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/pack_bits.h"

namespace polyhead {
namespace {

TEST(PackBits, MatchesBitByBitForEveryLength) {
  std::mt19937 rng(5);
  for (int64_t count = 0; count <= 128; ++count) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<uint8_t> bytes(static_cast<size_t>(count));
      for (auto& b : bytes) b = trial == 0 ? 1 : uint8_t(rng() & 1u);
      uint32_t got[4] = {}, want[4] = {};
      detail::pack_bits(bytes.data(), count, got);
      for (int64_t c = 0; c < count; ++c) want[c / 32] |= uint32_t(bytes[size_t(c)]) << (c % 32);
      for (int x = 0; x < 4; ++x) {
        ASSERT_EQ(got[x], want[x]) << "count " << count << " word " << x << " trial " << trial;
      }
    }
  }
}

}  // namespace
}  // namespace polyhead
