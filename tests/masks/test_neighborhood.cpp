// Neighborhood attention (NA, dilated, strided GNA, causal): NATTEN's rule on hand-worked cases,
// against an independent implementation of the spec, and compiled block maps.
#include <gtest/gtest.h>

#include <random>

#include "masks/mask_oracles.h"

namespace polyhead::masktest {
namespace {

NeighborhoodMask na1(int64_t len, int64_t k, int64_t d = 1, int64_t s = 1, bool causal = false) {
  NeighborhoodMask m;
  m.rank = 1;
  m.grid[0] = len, m.kernel[0] = k, m.dilation[0] = d, m.stride[0] = s, m.causal[0] = causal;
  return m;
}

// Keys of query x in a 1-D neighborhood, from the library's compiled rule.
std::vector<int64_t> keys_of(const NeighborhoodMask& m, int64_t x) {
  const int64_t n = m.grid[0];
  const BlockMap map = BlockMap::compile(MaskSpec(m), {n, n, 1, 1}, {4, 4});
  std::vector<int64_t> out;
  for (int64_t j = 0; j < n; ++j) {
    if (map.allowed(0, x, j)) out.push_back(j);
  }
  return out;
}

using Keys = std::vector<int64_t>;

TEST(Neighborhood, HandWorkedOddKernelShiftsAtTheEdges) {
  const auto m = na1(7, 3);
  EXPECT_EQ(keys_of(m, 0), (Keys{0, 1, 2}));  // window shifted right, not truncated
  EXPECT_EQ(keys_of(m, 3), (Keys{2, 3, 4}));
  EXPECT_EQ(keys_of(m, 6), (Keys{4, 5, 6}));
}

TEST(Neighborhood, HandWorkedEvenKernelHasMoreLeftThanRight) {
  const auto m = na1(7, 4);  // left = 2, right = 1
  EXPECT_EQ(keys_of(m, 3), (Keys{1, 2, 3, 4}));
  EXPECT_EQ(keys_of(m, 0), (Keys{0, 1, 2, 3}));
  EXPECT_EQ(keys_of(m, 6), (Keys{3, 4, 5, 6}));
}

TEST(Neighborhood, HandWorkedDilationWorksPerResidueGroup) {
  const auto m = na1(7, 3, 2);  // groups {0,2,4,6} and {1,3,5}
  EXPECT_EQ(keys_of(m, 0), (Keys{0, 2, 4}));
  EXPECT_EQ(keys_of(m, 6), (Keys{2, 4, 6}));
  EXPECT_EQ(keys_of(m, 5), (Keys{1, 3, 5}));
  EXPECT_EQ(keys_of(m, 3), (Keys{1, 3, 5}));
}

TEST(Neighborhood, HandWorkedStrideSharesTheLeadersWindow) {
  const auto m = na1(8, 3, 1, 2);  // stride groups {0,1}, {2,3}, ...; leader = group start + 1
  EXPECT_EQ(keys_of(m, 0), (Keys{0, 1, 2}));
  EXPECT_EQ(keys_of(m, 1), (Keys{0, 1, 2}));
  EXPECT_EQ(keys_of(m, 2), (Keys{2, 3, 4}));
  EXPECT_EQ(keys_of(m, 3), (Keys{2, 3, 4}));
  EXPECT_EQ(keys_of(m, 7), (Keys{5, 6, 7}));
}

TEST(Neighborhood, HandWorkedCausalEndsAtTheQuery) {
  const auto m = na1(8, 3, 1, 1, true);
  EXPECT_EQ(keys_of(m, 0), (Keys{0}));
  EXPECT_EQ(keys_of(m, 1), (Keys{0, 1}));
  EXPECT_EQ(keys_of(m, 4), (Keys{2, 3, 4}));
  const auto s = na1(8, 3, 1, 2, true);  // leader is the last query of the stride group
  EXPECT_EQ(keys_of(s, 0), (Keys{0}));
  EXPECT_EQ(keys_of(s, 2), (Keys{1, 2}));
  EXPECT_EQ(keys_of(s, 3), (Keys{1, 2, 3}));
}

TEST(Neighborhood, ClassicBoundaryRuleForUnitStrideAndDilation) {
  // start = clamp(x - left, 0, X - k), exactly k keys.
  for (int64_t len : {5, 9, 16}) {
    for (int64_t k = 1; k <= len; ++k) {
      const auto m = na1(len, k);
      for (int64_t x = 0; x < len; ++x) {
        const int64_t start = std::clamp<int64_t>(x - k / 2, 0, len - k);
        Keys want;
        for (int64_t j = start; j < start + k; ++j) want.push_back(j);
        ASSERT_EQ(keys_of(m, x), want) << "len " << len << " k " << k << " x " << x;
      }
    }
  }
}

NeighborhoodMask random_na(std::mt19937& rng, int rank) {
  NeighborhoodMask m;
  m.rank = rank;
  for (int d = 0; d < rank; ++d) {
    const size_t u = size_t(d);
    const int64_t max_len = rank == 1 ? 70 : (rank == 2 ? 14 : 7);
    m.grid[u] = std::uniform_int_distribution<int64_t>(1, max_len)(rng);
    m.dilation[u] =
        std::uniform_int_distribution<int64_t>(1, std::max<int64_t>(1, m.grid[u] / 3))(rng);
    const int64_t kmax = m.grid[u] / m.dilation[u];
    m.kernel[u] = std::uniform_int_distribution<int64_t>(1, kmax)(rng);
    m.stride[u] = std::uniform_int_distribution<int64_t>(1, m.kernel[u])(rng);
    m.causal[u] = std::uniform_int_distribution<int>(0, 2)(rng) == 0;
  }
  return m;
}

TEST(Neighborhood, RandomParametersMatchTheSpecAndTheBlockMapIsExact) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int rank = 1 + trial % 3;
    const NeighborhoodMask m = random_na(rng, rank);
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= m.grid[size_t(d)];
    const TileShape tile{std::uniform_int_distribution<int64_t>(1, 40)(rng),
                         std::uniform_int_distribution<int64_t>(1, 40)(rng)};
    const BlockMap map = BlockMap::compile(MaskSpec(m), {n, n, 2, 1}, tile);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        ASSERT_EQ(map.allowed(1, i, j), na_allowed(m, i, j))
            << MaskSpec(m).to_string() << " i=" << i << " j=" << j;
      }
    }
    const std::string err = check_block_map(map);
    ASSERT_EQ(err, "") << MaskSpec(m).to_string() << " tile " << tile.m << "x" << tile.n;
  }
}

TEST(Neighborhood, NonCausalPairCountIsTokensTimesKernelVolume) {
  NeighborhoodMask m;
  m.rank = 2;
  m.grid = {12, 10, 1};
  m.kernel = {5, 3, 1};
  m.dilation = {2, 1, 1};
  m.stride = {1, 3, 1};
  const BlockMap map = BlockMap::compile(MaskSpec(m), {120, 120, 3, 3}, {64, 64});
  EXPECT_EQ(map.pair_count(), 3 * 120 * 5 * 3);
}

TEST(Neighborhood, RejectsBadParameters) {
  auto bad = [](NeighborhoodMask m, int64_t n, const char* what) {
    try {
      BlockMap::compile(MaskSpec(m), {n, n, 1, 1}, {64, 64});
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  bad(na1(8, 9), 8, "kernel[0] * dilation[0]");
  bad(na1(8, 3, 1, 4), 8, "stride[0]");
  bad(na1(8, 3), 9, "prod(grid)");
  bad(na1(8, 0), 8, "kernel[0]");
}

}  // namespace
}  // namespace polyhead::masktest
