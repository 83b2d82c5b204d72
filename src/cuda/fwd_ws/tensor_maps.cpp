#include "cuda/fwd_ws/tensor_maps.h"

#include "polyhead/error.h"

namespace polyhead::cuda {
namespace {

// A dimension of extent 1 is never stepped: any valid stride will do.
uint64_t stride_bytes(int64_t elems, int64_t extent, uint64_t fallback) {
  return extent > 1 ? uint64_t(elems) * 2 : fallback;
}

}  // namespace

TmaTensor token_rows_tensor(const void* base, int64_t batch, int64_t rows, int64_t heads, int64_t d,
                            int64_t batch_stride, int64_t row_stride, int64_t head_stride,
                            int box_rows) {
  TmaTensor t;
  t.base = base;
  t.rank = 4;
  t.dims = {uint64_t(d), uint64_t(heads), uint64_t(rows), uint64_t(batch), 0};
  const uint64_t row_bytes = uint64_t(d) * 2;
  t.strides = {stride_bytes(head_stride, heads, row_bytes),
               stride_bytes(row_stride, rows, row_bytes),
               stride_bytes(batch_stride, batch, row_bytes), 0};
  t.box = {64, 1, uint32_t(box_rows), 1, 0};
  return t;
}

TmaTensor patch_tensor(const void* base, const TokenOrder& order, int64_t batch, int64_t heads,
                       int64_t d, int64_t batch_stride, int64_t row_stride, int64_t head_stride,
                       int box_positions) {
  const int64_t rows = order.grid[1], cols = order.grid[2];
  const int box_cols = 1 << order.inner[2], sub = 1 << order.sub_bits;
  const int box_rows = box_positions == 0 ? 1 << order.inner[1] : box_positions / box_cols;
  POLYHEAD_CHECK(box_positions >= 0 && box_positions <= sub && box_positions % box_cols == 0,
                 "cuda backend: a patch-order box of ", box_positions,
                 " positions is not whole rows of the ", sub, "-position (sub-)patch (rows of ",
                 box_cols, ")");
  TmaTensor t;
  t.base = base;
  t.rank = 5;
  t.dims = {uint64_t(d), uint64_t(heads), uint64_t(cols), uint64_t(rows), uint64_t(batch)};
  const uint64_t row_bytes = uint64_t(d) * 2;
  t.strides = {stride_bytes(head_stride, heads, row_bytes),
               stride_bytes(row_stride, cols, row_bytes),
               stride_bytes(row_stride * cols, rows, row_bytes),
               stride_bytes(batch_stride, batch, row_bytes)};
  t.box = {64, 1, uint32_t(box_cols), uint32_t(box_rows), 1};
  return t;
}

}  // namespace polyhead::cuda
