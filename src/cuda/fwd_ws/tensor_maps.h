// The TMA views of Q, K and V that the warp-specialized kernel (fwd_ws/) loads its tiles
// through, as host-side descriptions (tma/tensor_map.h encodes them; tests check them on the
// host).
#pragma once

#include <cstdint>

#include "cuda/fwd/token_order.h"
#include "cuda/tma/tensor_map.h"

namespace polyhead::cuda {

// [batch, rows, heads, d] of 16-bit elements as the 4-D tensor (d, heads, rows, batch), in
// boxes of 64 columns x box_rows rows of one head. Rows past `rows` read as zeros.
TmaTensor token_rows_tensor(const void* base, int64_t batch, int64_t rows, int64_t heads, int64_t d,
                            int64_t batch_stride, int64_t row_stride, int64_t head_stride,
                            int box_rows);

// Patch order of a rank-2 grid (token_order.h): the tokens of the grid[1] x grid[2] grid as the
// 5-D tensor (d, heads, cols, rows, batch), in boxes of one 2^inner[1] x 2^inner[2] sub-patch
// (the whole patch when it has none) of one head, row-major inside, so one copy per 64 columns
// loads a sub-patch's positions in order. box_positions (0: the (sub-)patch's 2^sub_bits) takes
// the box's first box_positions positions instead, whole rows of the (sub-)patch: the O stores
// of the ws kernel write each consumer warpgroup's 64 rows, half of a 128-position patch.
TmaTensor patch_tensor(const void* base, const TokenOrder& order, int64_t batch, int64_t heads,
                       int64_t d, int64_t batch_stride, int64_t row_stride, int64_t head_stride,
                       int box_positions = 0);

}  // namespace polyhead::cuda
