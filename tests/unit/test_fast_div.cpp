// FastDiv (src/cuda/fwd/params.h): the multiply-shift division with which the persistent GPU
// kernels split a work-item index into (query tile, head, sequence). The kernels run it on
// every item; here its host twin is checked against plain division for every divisor up to
// 4096, powers of two and their neighbours, and the largest ones, at the edges of each
// quotient and at random dividends below 2^31.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/fwd/params.h"

namespace polyhead {
namespace {

void expect_divides(uint32_t d, std::mt19937& rng) {
  const cuda::FastDiv f(d);
  constexpr uint32_t kMax = (uint32_t(1) << 31) - 1;  // dividends stay below 2^31
  std::vector<uint32_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, 2 * d, kMax, kMax - 1};
  const uint32_t last = kMax / d * d;  // the largest multiple of d in range
  ns.insert(ns.end(), {last, last - 1, last > d ? last - d : 0});
  std::uniform_int_distribution<uint32_t> any(0, kMax);
  for (int i = 0; i < 16; ++i) ns.push_back(any(rng));
  for (uint32_t n : ns) {
    if (n > kMax) continue;  // d - 1 etc. wrap for d = 0, never used
    ASSERT_EQ(f.divide(n), n / d) << "n = " << n << ", d = " << d;
  }
}

TEST(FastDiv, EveryDivisorUpTo4096) {
  std::mt19937 rng(7);
  for (uint32_t d = 1; d <= 4096; ++d) expect_divides(d, rng);
}

TEST(FastDiv, PowersOfTwoAndLargeDivisors) {
  std::mt19937 rng(11);
  for (int k = 12; k <= 30; ++k) {
    const uint32_t p = uint32_t(1) << k;
    for (uint32_t d : {p - 1, p, p + 1}) expect_divides(d, rng);
  }
  for (uint32_t d : {65535u, 65536u * 3 + 7, (uint32_t(1) << 31) - 1, uint32_t(1) << 31}) {
    expect_divides(d, rng);
  }
}

}  // namespace
}  // namespace polyhead
