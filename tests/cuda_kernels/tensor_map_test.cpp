// The TMA tensor-map encoder's refusals (src/cuda/tma/tensor_map.cpp), on the host: every rule
// is checked before the driver is asked, so these run without a GPU. And the views the
// warp-specialized kernel loads through (fwd_ws/tensor_maps.h): a patch-order box walks its
// patch's positions in the order token_order.h gives them.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cuda/fwd/patch_map.h"
#include "cuda/fwd_ws/tensor_maps.h"
#include "cuda/tma/tensor_map.h"
#include "polyhead/error.h"
#include "polyhead/polyhead.h"

namespace polyhead {
namespace {

cuda::TmaTensor valid() {
  cuda::TmaTensor t;
  t.base = reinterpret_cast<const void*>(uintptr_t(1) << 20);
  t.rank = 4;
  t.dims = {128, 8, 4096, 2, 0};
  t.strides = {256, 2048, 8388608, 0};
  t.box = {64, 1, 64, 1, 0};
  return t;
}

void expect_refused(const cuda::TmaTensor& t, const std::string& says) {
  try {
    (void)cuda::make_tensor_map_sw128(t);
    FAIL() << "accepted; expected a refusal saying '" << says << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(TensorMap, RefusesWhatTmaCannotCopy) {
  cuda::TmaTensor t = valid();
  t.rank = 6;
  expect_refused(t, "1 to 5 dimensions");
  t = valid();
  t.base = reinterpret_cast<const void*>(uintptr_t(1) << 20 | 8);
  expect_refused(t, "16-byte aligned");
  t = valid();
  t.strides[1] = 2056;
  expect_refused(t, "multiple of 16");
  t = valid();
  t.box[2] = 257;
  expect_refused(t, "allowed 1 to 256");
  t = valid();
  t.box[0] = 128;
  expect_refused(t, "at most 64");
  t = valid();
  t.dims[3] = 0;
  expect_refused(t, "allowed 1 to 2^32");
}

TEST(TensorMap, TokenRowsView) {
  // [2, 1000, 8, 128] with one extra head of padding per token.
  const cuda::TmaTensor t =
      cuda::token_rows_tensor(reinterpret_cast<const void*>(uintptr_t(1) << 20), 2, 1000, 8, 128,
                              1000 * 9 * 128, 9 * 128, 128, 64);
  EXPECT_EQ(t.rank, 4);
  EXPECT_EQ(t.dims[0], 128u);
  EXPECT_EQ(t.dims[1], 8u);
  EXPECT_EQ(t.dims[2], 1000u);
  EXPECT_EQ(t.dims[3], 2u);
  EXPECT_EQ(t.strides[0], 256u);
  EXPECT_EQ(t.strides[1], 9u * 256u);
  EXPECT_EQ(t.strides[2], 1000u * 9u * 256u);
  EXPECT_EQ(t.box[2], 64u);
}

// Every position of a 128 x 128 neighborhood grid in patch order, for 128-key tiles (whole
// 8 x 16 patches) and 64-key tiles (8 x 8 sub-patches): the element that the 5-D box starting
// at the corner of its (sub-)patch (TokenOrder::coords, as the kernel computes it) puts at row w
// of its copy (row-major over the box's columns and rows) is token(pos + w). The same for the
// 64-position boxes of the O stores, from the coordinates of every 64th position.
TEST(TensorMap, PatchViewFollowsTheTokenOrder) {
  NeighborhoodMask m;
  m.rank = 2;
  m.grid = {128, 128, 1};
  m.kernel = {17, 17, 1};
  const int64_t tokens = 128 * 128, heads = 4, d = 128;
  const Device gpu{DeviceType::cuda, 0};
  auto at = [](uintptr_t slot) { return reinterpret_cast<void*>(slot << 40); };
  AttentionProblem p;
  p.q = TensorView::contiguous(at(1), DType::bf16, {2, tokens, heads, d}, gpu);
  p.k = TensorView::contiguous(at(2), DType::bf16, {2, tokens, heads, d}, gpu);
  p.v = TensorView::contiguous(at(3), DType::bf16, {2, tokens, heads, d}, gpu);
  p.o = TensorView::contiguous(at(4), DType::bf16, {2, tokens, heads, d}, gpu);
  p.mask = MaskSpec(m);
  const ProblemShape s = validate(p);
  for (const int64_t n : {128, 64}) {
    const auto order = cuda::choose_patch_order(p, s, TileShape{128, n});
    ASSERT_TRUE(order.has_value());
    // 128-key tiles: whole patches; 64-key tiles: two sub-patches per patch.
    ASSERT_EQ(order->sub_bits, n == 128 ? 7 : 6);
    for (const int positions : {0, 64}) {
      const cuda::TmaTensor t = cuda::patch_tensor(p.k.data, *order, 2, heads, d, p.k.stride[0],
                                                   p.k.stride[1], p.k.stride[2], positions);
      ASSERT_EQ(t.rank, 5);
      EXPECT_EQ(t.box[0], 64u);
      EXPECT_EQ(t.box[1], 1u);
      EXPECT_EQ(t.box[4], 1u);
      const int32_t box = positions == 0 ? 1 << order->sub_bits : positions;
      ASSERT_EQ(t.box[2] * t.box[3], uint32_t(box));
      EXPECT_EQ(t.dims[2] * t.dims[3], uint64_t(tokens));
      const uint64_t token_bytes = uint64_t(p.k.stride[1]) * 2;
      for (int32_t pos = 0; pos < int32_t(tokens); pos += box) {
        int32_t c[3];
        order->coords(pos, c);
        for (int32_t w = 0; w < box; ++w) {
          const uint64_t col = uint64_t(c[2]) + uint64_t(w) % t.box[2];
          const uint64_t row = uint64_t(c[1]) + uint64_t(w) / t.box[2];
          ASSERT_TRUE(col < t.dims[2] && row < t.dims[3])
              << "n " << n << " box " << box << " pos " << pos + w;
          const uint64_t bytes = col * t.strides[1] + row * t.strides[2];
          ASSERT_EQ(bytes, uint64_t(order->token(pos + w)) * token_bytes)
              << "n " << n << " box " << box << " pos " << pos + w;
        }
      }
    }
    // A box that is not whole rows of the (sub-)patch is refused.
    EXPECT_THROW(cuda::patch_tensor(p.k.data, *order, 2, heads, d, p.k.stride[0], p.k.stride[1],
                                    p.k.stride[2], 36),
                 Error);
  }
}

}  // namespace
}  // namespace polyhead
