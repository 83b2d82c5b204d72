// The order in which a kernel walks a sequence's tokens. Identity by default; for neighborhood
// masks over 2-D and 3-D grids the dispatcher may choose patch order (patch_map.h), in which
// position p is token `token(p)`: the grid is cut into patches of 2^s0 x 2^s1 x 2^s2 tokens
// (128 = one query tile), patches follow each other in row-major order over the patch grid,
// and a patch's tokens are row-major inside it. A 128-row query tile then holds a compact
// block of the grid, whose neighborhoods cover a few whole key tiles instead of long runs of
// partial ones. Host and device code: the kernels map tile rows to token rows with it, the
// host compiles the block map over the same positions.
#pragma once

#include <cstdint>

#include "core/mask_policy.h"  // POLYHEAD_HD

namespace polyhead::cuda {

struct TokenOrder {
  int32_t patched = 0;             // 0: identity (every other field unused)
  int32_t grid[3] = {1, 1, 1};     // grid extents, leading ones for rank 2
  int32_t shift[3] = {0, 0, 0};    // log2 of the patch extents
  int32_t patches[3] = {1, 1, 1};  // grid[d] >> shift[d]
  int32_t patch_bits = 0;          // shift[0] + shift[1] + shift[2]

  // Token of the first position of patch `patch` (its corner); once per tile in the kernels.
  POLYHEAD_HD int32_t patch_origin(int32_t patch) const {
    const int32_t pc2 = patch % patches[2], pc1 = (patch / patches[2]) % patches[1];
    const int32_t pc0 = patch / (patches[2] * patches[1]);
    return ((pc0 << shift[0]) * grid[1] + (pc1 << shift[1])) * grid[2] + (pc2 << shift[2]);
  }
  // Token offset of position `within` of a patch from the patch's corner: shifts and masks.
  POLYHEAD_HD int32_t within_offset(int32_t within) const {
    const int32_t w2 = within & ((1 << shift[2]) - 1);
    const int32_t w1 = (within >> shift[2]) & ((1 << shift[1]) - 1);
    const int32_t w0 = within >> (shift[2] + shift[1]);
    return (w0 * grid[1] + w1) * grid[2] + w2;
  }
  // The row-major token at position p.
  POLYHEAD_HD int32_t token(int32_t p) const {
    if (!patched) return p;
    return patch_origin(p >> patch_bits) + within_offset(p & ((1 << patch_bits) - 1));
  }
};

}  // namespace polyhead::cuda
