// The patch order of neighborhood masks (src/cuda/fwd/token_order.h, patch_map.cpp), checked
// on the host without a GPU: the order is a permutation of the grid's tokens, and the block map
// compiled over patch-order positions lists exactly the key tiles with a visible pair, marks
// exactly the fully visible ones full, and carries every partial tile's bits, against the
// mask's own rule on row-major tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "cuda/fwd/patch_map.h"
#include "polyhead/polyhead.h"

namespace polyhead {
namespace {

AttentionProblem na_problem(const NeighborhoodMask& m, int64_t heads = 2) {
  int64_t tokens = 1;
  for (int d = 0; d < m.rank; ++d) tokens *= m.grid[size_t(d)];
  const Device gpu{DeviceType::cuda, 0};
  // Views only: nothing is read, so distinct fake device addresses suffice.
  auto at = [](uintptr_t slot) { return reinterpret_cast<void*>(slot << 40); };
  AttentionProblem p;
  p.q = TensorView::contiguous(at(1), DType::bf16, {2, tokens, heads, 128}, gpu);
  p.k = TensorView::contiguous(at(2), DType::bf16, {2, tokens, heads, 128}, gpu);
  p.v = TensorView::contiguous(at(3), DType::bf16, {2, tokens, heads, 128}, gpu);
  p.o = TensorView::contiguous(at(4), DType::bf16, {2, tokens, heads, 128}, gpu);
  p.mask = MaskSpec(m);
  return p;
}

void expect_exact(const NeighborhoodMask& m, TileShape tile) {
  const AttentionProblem p = na_problem(m);
  const ProblemShape s = validate(p);
  const auto order = cuda::choose_patch_order(p, s, tile);
  ASSERT_TRUE(order.has_value()) << p.mask.to_string();
  const int64_t tokens = s.seqlen_q;
  std::vector<uint8_t> hit(size_t(tokens), 0);
  for (int32_t pos = 0; pos < tokens; ++pos) {
    const int32_t t = order->token(pos);
    ASSERT_TRUE(t >= 0 && t < tokens && !hit[size_t(t)]) << "position " << pos;
    hit[size_t(t)] = 1;
  }
  const cuda::HostBlockMap map = cuda::build_patch_block_map(p, s, *order, tile);
  const BlockMap rule =
      BlockMap::compile(p.mask, {tokens, tokens, s.heads_q, s.heads_kv}, TileShape{128, tile.n});
  const int64_t words = tile.n / 32, k_tiles = tokens / tile.n;
  ASSERT_EQ(int64_t(map.row_ptr.size()), tokens / tile.m + 1);
  for (int32_t start : map.row_start) ASSERT_EQ(start, 0);
  for (int64_t qt = 0; qt < tokens / tile.m; ++qt) {
    std::vector<int32_t> listed(size_t(k_tiles), -3);  // slot, or -3 when absent
    for (int32_t e = map.row_ptr[size_t(qt)]; e < map.row_ptr[size_t(qt) + 1]; ++e) {
      listed[size_t(map.tiles[size_t(2 * e)])] = map.tiles[size_t(2 * e + 1)];
    }
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      int64_t visible = 0;
      for (int64_t r = 0; r < tile.m; ++r) {
        for (int64_t c = 0; c < tile.n; ++c) {
          const bool want = rule.allowed(0, order->token(int32_t(qt * tile.m + r)),
                                         order->token(int32_t(kt * tile.n + c)));
          visible += want;
          const int32_t slot = listed[size_t(kt)];
          if (slot >= 0) {
            const uint32_t word = map.bits[size_t((slot * tile.m + r) * words + c / 32)];
            ASSERT_EQ(bool((word >> (c % 32)) & 1u), want)
                << p.mask.to_string() << " q tile " << qt << " key tile " << kt << " r " << r
                << " c " << c;
          }
        }
      }
      const int32_t slot = listed[size_t(kt)];
      ASSERT_EQ(visible > 0, slot != -3) << p.mask.to_string() << " q " << qt << " k " << kt;
      if (visible > 0) {
        ASSERT_EQ(visible == tile.m * tile.n, slot == -1);
      }
    }
  }
}

TEST(PatchOrder, NeighborhoodMapsAreExact) {
  NeighborhoodMask a;  // 2-D, NATTEN's clamped windows at the borders
  a.rank = 2, a.grid = {16, 32, 1}, a.kernel = {5, 7, 1};
  NeighborhoodMask b = a;  // dilation, stride and a causal dimension
  b.dilation = {2, 1, 1}, b.stride = {1, 3, 1}, b.causal = {true, false, false};
  NeighborhoodMask c;  // 3-D
  c.rank = 3,
  c.grid =
      {
          8,
          8,
          16,
      },
  c.kernel = {3, 5, 3};
  for (const NeighborhoodMask& m : {a, b, c}) {
    for (TileShape tile : {TileShape{128, 128}, TileShape{128, 64}, TileShape{64, 64}}) {
      expect_exact(m, tile);
    }
  }
}

// NA-2D 17 x 17 on 128 x 128 tokens: an 8 x 16 query patch reaches 3 x 3 patches of 128 keys,
// or 3 x 4 sub-patches of 8 x 8 for 64-key tiles (row-major halves of 4 x 16 would be 6 x 3);
// an 8 x 8 query sub-patch (64-row tiles) reaches 3 x 3 of them.
TEST(PatchOrder, SubPatchesForNarrowKeyTiles) {
  NeighborhoodMask m;
  m.rank = 2, m.grid = {128, 128, 1}, m.kernel = {17, 17, 1};
  const AttentionProblem p = na_problem(m, 1);
  const ProblemShape s = validate(p);
  for (auto [tile, most] : {std::pair{TileShape{128, 128}, 9}, std::pair{TileShape{128, 64}, 12},
                            std::pair{TileShape{64, 64}, 9}}) {
    const auto order = cuda::choose_patch_order(p, s, tile);
    ASSERT_TRUE(order.has_value());
    EXPECT_EQ(order->sub_bits, tile.n == 64 ? 6 : 7);
    const cuda::HostBlockMap map = cuda::build_patch_block_map(p, s, *order, tile);
    int widest = 0;
    for (size_t r = 0; r + 1 < map.row_ptr.size(); ++r) {
      widest = std::max(widest, map.row_ptr[r + 1] - map.row_ptr[r]);
    }
    EXPECT_EQ(widest, most) << "tile " << tile.m << " x " << tile.n;
  }
}

TEST(PatchOrder, OnlyNeighborhoodsThatTile) {
  NeighborhoodMask odd;  // 12 x 12: no power-of-two patch of 128 divides it
  odd.rank = 2, odd.grid = {12, 12, 1}, odd.kernel = {3, 3, 1};
  const AttentionProblem p = na_problem(odd);
  EXPECT_FALSE(cuda::choose_patch_order(p, validate(p), {128, 128}).has_value());
  NeighborhoodMask one;  // rank 1: row-major order is already patch order
  one.rank = 1, one.grid = {512, 1, 1}, one.kernel = {33, 1, 1};
  const AttentionProblem q = na_problem(one);
  EXPECT_FALSE(cuda::choose_patch_order(q, validate(q), {128, 128}).has_value());
  AttentionProblem w = na_problem(NeighborhoodMask{2, {16, 32, 1}, {3, 3, 1}});
  w.mask = MaskSpec::causal();
  EXPECT_FALSE(cuda::choose_patch_order(w, validate(w), {128, 128}).has_value());
}

}  // namespace
}  // namespace polyhead
