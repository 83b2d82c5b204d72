// Tile shape of the cpu backend.
#pragma once

#include <cstdint>

namespace polyhead::cpu {

// 64 query rows x 64 keys. Per thread the working set is Q^T (64 x Dqk), one K tile
// (64 x Dqk), one V tile (64 x Dv), the transposed scores (64 x 64) and the output
// accumulator (64 x Dv): 144 KiB at D = 128, inside a 512 KiB L2. 64 query rows amortize
// the conversion of each K/V tile over 128 FLOPs per element; 64 keys keep the per-tile
// softmax bookkeeping (row max, rescale of O) under 5% of the tile's FLOPs at D = 128.
inline constexpr int64_t kBlockM = 64;
inline constexpr int64_t kBlockN = 64;

}  // namespace polyhead::cpu
