// S2-Attention strides, window sinks, user block masks, per-head specs and MoA plans.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "masks/mask_oracles.h"

namespace polyhead::masktest {
namespace {

TEST(Strided, RandomParametersMatchTheSpecPerHead) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    StridedMask m;
    m.block = std::uniform_int_distribution<int64_t>(1, 16)(rng);
    m.local = std::uniform_int_distribution<int64_t>(1, 4)(rng);
    m.vstride = std::uniform_int_distribution<int64_t>(1, 9)(rng);
    m.offset = std::uniform_int_distribution<int64_t>(0, 5)(rng);
    const int64_t hkv = std::uniform_int_distribution<int64_t>(1, 4)(rng);
    const int64_t hq = hkv * std::uniform_int_distribution<int64_t>(1, 3)(rng);
    m.dense_heads = std::uniform_int_distribution<int64_t>(0, hkv)(rng);
    m.homo_heads = trial % 5 == 0;
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 150)(rng);
    const TileShape tile{std::uniform_int_distribution<int64_t>(1, 48)(rng),
                         std::uniform_int_distribution<int64_t>(1, 48)(rng)};
    const BlockMap map = BlockMap::compile(MaskSpec(m), {n, n, hq, hkv}, tile);
    for (int64_t h = 0; h < hq; ++h) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          ASSERT_EQ(map.allowed(h, i, j), s2_allowed(m, hq, hkv, h, i, j))
              << MaskSpec(m).to_string() << " hq " << hq << " hkv " << hkv << " h " << h << " i "
              << i << " j " << j;
        }
      }
    }
    ASSERT_EQ(check_block_map(map), "") << MaskSpec(m).to_string();
  }
}

TEST(Strided, HeadsTogetherCoverEveryBlock) {
  // Heterogeneous sharding: with Hq >= vstride, step 1, heads 0..vstride-1 cover every block.
  StridedMask m{.block = 4, .local = 1, .vstride = 4, .offset = 0, .dense_heads = 0};
  const int64_t n = 64;
  const BlockMap map = BlockMap::compile(MaskSpec(m), {n, n, 4, 4}, {16, 16});
  for (int64_t j = 0; j < n; ++j) {
    bool seen = false;
    for (int64_t h = 0; h < 4; ++h) seen |= map.allowed(h, n - 1, j);
    EXPECT_TRUE(seen) << "key " << j;
  }
}

bool window_sink_oracle(int64_t left, int64_t right, int64_t sink, int64_t pos, int64_t j) {
  const bool right_ok = right < 0 || j <= pos + right;
  const bool left_ok = left < 0 || j >= pos - left;
  return right_ok && (left_ok || j < sink);
}

TEST(WindowSink, MatchesStreamingLlmRuleAndBlockMapsAreExact) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t sq = std::uniform_int_distribution<int64_t>(1, 90)(rng);
    const int64_t sk = std::uniform_int_distribution<int64_t>(1, 90)(rng);
    const int64_t left = std::uniform_int_distribution<int64_t>(-1, 30)(rng);
    const int64_t right = std::uniform_int_distribution<int64_t>(-1, 5)(rng);
    const int64_t sink = std::uniform_int_distribution<int64_t>(0, 12)(rng);
    const bool topleft = trial % 3 == 0;
    const MaskSpec spec = MaskSpec::window(
        left, right, topleft ? Alignment::top_left : Alignment::bottom_right, sink);
    const TileShape tile{std::uniform_int_distribution<int64_t>(1, 32)(rng),
                         std::uniform_int_distribution<int64_t>(1, 32)(rng)};
    const BlockMap map = BlockMap::compile(spec, {sq, sk, 1, 1}, tile);
    for (int64_t i = 0; i < sq; ++i) {
      const int64_t pos = topleft ? i : i + sk - sq;
      for (int64_t j = 0; j < sk; ++j) {
        ASSERT_EQ(map.allowed(0, i, j), window_sink_oracle(left, right, sink, pos, j))
            << spec.to_string() << " sq " << sq << " sk " << sk << " i " << i << " j " << j;
      }
    }
    ASSERT_EQ(check_block_map(map), "") << spec.to_string() << " tile " << tile.m << "x" << tile.n;
  }
}

TEST(BlockMaskKind, RandomBitsPerHeadAndSharedAreExact) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t sq = std::uniform_int_distribution<int64_t>(1, 100)(rng);
    const int64_t sk = std::uniform_int_distribution<int64_t>(1, 100)(rng);
    const int64_t hq = 3;
    BlockMask m;
    m.block_q = std::uniform_int_distribution<int64_t>(1, 20)(rng);
    m.block_k = std::uniform_int_distribution<int64_t>(1, 20)(rng);
    const int64_t qb = (sq + m.block_q - 1) / m.block_q + trial % 2;  // extra blocks are ignored
    const int64_t kb = (sk + m.block_k - 1) / m.block_k;
    const int64_t heads = trial % 3 == 0 ? 1 : hq;
    auto bits = std::make_shared<std::vector<uint8_t>>(size_t(heads * qb * kb));
    for (auto& b : *bits) b = std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? 1 : 0;
    m.bits.view = TensorView::contiguous(bits->data(), DType::u8, {heads, qb, kb});
    m.bits.owner = bits;
    const TileShape tile{std::uniform_int_distribution<int64_t>(1, 40)(rng),
                         std::uniform_int_distribution<int64_t>(1, 40)(rng)};
    const BlockMap map = BlockMap::compile(MaskSpec(m), {sq, sk, hq, 1}, tile);
    for (int64_t h = 0; h < hq; ++h) {
      for (int64_t i = 0; i < sq; ++i) {
        for (int64_t j = 0; j < sk; ++j) {
          const bool want =
              (*bits)[size_t(((heads == 1 ? 0 : h) * qb + i / m.block_q) * kb + j / m.block_k)] !=
              0;
          ASSERT_EQ(map.allowed(h, i, j), want);
        }
        // One tile's keys at a time, as the kernels ask for them.
        const int64_t j0 = std::uniform_int_distribution<int64_t>(0, sk - 1)(rng);
        const int64_t count = std::uniform_int_distribution<int64_t>(1, sk - j0)(rng);
        std::vector<uint8_t> row(size_t(count), 7);
        map.allowed_row(h, i, j0, count, row.data());
        for (int64_t t = 0; t < count; ++t) {
          ASSERT_EQ(row[size_t(t)], map.allowed(h, i, j0 + t) ? 1 : 0) << "j " << j0 + t;
        }
      }
    }
    ASSERT_EQ(check_block_map(map), "");
  }
}

TEST(BlockMaskKind, RejectsShapesThatDoNotCoverTheSequence) {
  auto bits = std::make_shared<std::vector<uint8_t>>(2 * 2, 1);
  BlockMask m;
  m.block_q = m.block_k = 16;
  m.bits.view = TensorView::contiguous(bits->data(), DType::u8, {1, 2, 2});
  m.bits.owner = bits;
  EXPECT_THROW(BlockMap::compile(MaskSpec(m), {40, 20, 1, 1}, {64, 64}), Error);
  EXPECT_NO_THROW(BlockMap::compile(MaskSpec(m), {32, 20, 1, 1}, {64, 64}));
}

TEST(PerHead, EachHeadFollowsItsOwnSpec) {
  const MaskSpec spec =
      MaskSpec::parse("heads:causal|window:3,1|none|s2:block=4,local=1,vstride=2");
  const int64_t n = 37;
  const BlockMap map = BlockMap::compile(spec, {n, n, 4, 2}, {8, 8});
  const MaskSpec subs[4] = {MaskSpec::causal(), MaskSpec::window(3, 1), MaskSpec::none(),
                            MaskSpec::parse("s2:block=4,local=1,vstride=2")};
  for (int64_t h = 0; h < 4; ++h) {
    const BlockMap one = BlockMap::compile(subs[h], {n, n, 4, 2}, {8, 8});
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) ASSERT_EQ(map.allowed(h, i, j), one.allowed(h, i, j));
    }
  }
  EXPECT_EQ(check_block_map(map), "");
  EXPECT_THROW(BlockMap::compile(spec, {n, n, 3, 1}, {8, 8}), Error);  // 4 specs, 3 heads
}

TEST(PerHead, MoaPlanFollowsTheElasticRule) {
  const std::vector<double> alpha = {100, 0, 300}, beta = {0.0, 0.5, 0.25};
  const int64_t n_total = 1000, sink = 64;
  const MaskSpec spec = moa_heads(alpha, beta, n_total, sink, 128, 64);
  const int64_t n = 400;
  const BlockMap map = BlockMap::compile(spec, {n, n, 3, 3}, {64, 64});
  for (int64_t h = 0; h < 3; ++h) {
    int64_t c = std::min<int64_t>(int64_t(std::floor(alpha[h] + beta[h] * n_total)), n_total);
    c = (std::max<int64_t>(c, 128) + 63) / 64 * 64;
    const int64_t s = std::min(c, sink), band = c - s;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const bool want = j <= i && (j < s || i - j < band);
        ASSERT_EQ(map.allowed(h, i, j), want) << "head " << h << " i " << i << " j " << j;
      }
    }
  }
  EXPECT_EQ(check_block_map(map), "");
}

}  // namespace
}  // namespace polyhead::masktest

namespace polyhead::masktest {
namespace {

bool slice_oracle(const std::vector<AttnSlice>& slices, int64_t i, int64_t j) {
  for (const AttnSlice& a : slices) {
    if (i < a.q_begin || i >= a.q_end || j < a.k_begin || j >= a.k_end) continue;
    const bool causal_ok = j <= i + (a.k_end - a.q_end);
    const bool inv_ok = j >= i + (a.k_begin - a.q_begin);
    switch (a.type) {
      case SliceType::full:
        return true;
      case SliceType::causal:
        if (causal_ok) return true;
        break;
      case SliceType::inv_causal:
        if (inv_ok) return true;
        break;
      case SliceType::bi_causal:
        if (causal_ok && inv_ok) return true;
        break;
    }
  }
  return false;
}

TEST(Slices, RandomOverlappingSlicesMatchMagiAttentionGeometry) {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t sq = std::uniform_int_distribution<int64_t>(1, 150)(rng);
    const int64_t sk = std::uniform_int_distribution<int64_t>(1, 150)(rng);
    SliceMask m;
    const int n = std::uniform_int_distribution<int>(1, 6)(rng);
    for (int s = 0; s < n; ++s) {
      int64_t a = std::uniform_int_distribution<int64_t>(0, sq)(rng),
              b = std::uniform_int_distribution<int64_t>(0, sq)(rng);
      int64_t c = std::uniform_int_distribution<int64_t>(0, sk)(rng),
              d = std::uniform_int_distribution<int64_t>(0, sk)(rng);
      m.slices.push_back({std::min(a, b), std::max(a, b), std::min(c, d), std::max(c, d),
                          SliceType(std::uniform_int_distribution<int>(0, 3)(rng))});
    }
    const TileShape tile{std::uniform_int_distribution<int64_t>(1, 40)(rng),
                         std::uniform_int_distribution<int64_t>(1, 40)(rng)};
    const MaskSpec spec(m);
    ASSERT_EQ(MaskSpec::parse(spec.to_string()), spec);
    const BlockMap map = BlockMap::compile(spec, {sq, sk, 2, 2}, tile);
    for (int64_t i = 0; i < sq; ++i) {
      for (int64_t j = 0; j < sk; ++j) {
        ASSERT_EQ(map.allowed(0, i, j), slice_oracle(m.slices, i, j))
            << spec.to_string() << " i " << i << " j " << j;
      }
    }
    ASSERT_EQ(check_block_map(map), "") << spec.to_string();
  }
}

TEST(Slices, RejectsSlicesOutsideTheSequence) {
  EXPECT_THROW(BlockMap::compile(MaskSpec::parse("slices:0,10,0,20,causal"), {8, 20, 1, 1}, {8, 8}),
               Error);
  EXPECT_THROW(MaskSpec::parse("slices:0,10,0,20,sideways"), Error);
  EXPECT_THROW(MaskSpec::parse("slices:0,10,0"), Error);
}

}  // namespace
}  // namespace polyhead::masktest
