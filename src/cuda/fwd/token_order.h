// The order in which a kernel walks a sequence's tokens. Identity by default; for neighborhood
// masks over 2-D and 3-D grids the dispatcher may choose patch order (patch_map.h), in which
// position p is token `token(p)`: the grid is cut into patches of 2^s0 x 2^s1 x 2^s2 tokens
// (128 = one query tile), patches follow each other in row-major order over the patch grid,
// and a patch's tokens are row-major inside it. A 128-row query tile then holds a compact
// block of the grid, whose neighborhoods cover a few whole key tiles instead of long runs of
// partial ones. For 64-key tiles a patch may be two sub-patches, halves of it along dimension
// `sub_dim`, one after the other, each row-major inside: a key tile is then a compact block
// too (17 x 17 on a 128 x 128 grid: 12 key tiles of 8 x 8 per 8 x 16 query patch instead of
// 18 row-major halves of 4 x 16). Host and device code: the kernels map tile rows to token
// rows with it, the host compiles the block map over the same positions.
#pragma once

#include <cstdint>

#include "core/mask_policy.h"  // POLYHEAD_HD
#include "cuda/fwd/fast_div.h"

namespace polyhead::cuda {

struct TokenOrder {
  int32_t patched = 0;             // 0: identity (every other field unused)
  int32_t grid[3] = {1, 1, 1};     // grid extents, leading ones for rank 2
  int32_t shift[3] = {0, 0, 0};    // log2 of the patch extents
  int32_t patches[3] = {1, 1, 1};  // grid[d] >> shift[d]
  int32_t patch_bits = 0;          // shift[0] + shift[1] + shift[2]
  // Sub-patches: positions below 2^sub_bits are row-major over extents 2^inner[d]; the bits
  // above count sub-patches along sub_dim. Without sub-patches inner = shift, sub_bits =
  // patch_bits.
  int32_t inner[3] = {0, 0, 0};
  int32_t sub_bits = 0;
  int32_t sub_dim = 2;
  FastDiv div_p2;   // by patches[2]
  FastDiv div_p12;  // by patches[1] * patches[2]

  // Grid coordinates of the corner of patch `patch`.
  POLYHEAD_HD void patch_corner(int32_t patch, int32_t* c) const {
    const int32_t q2 = int32_t(div_p2.divide(uint32_t(patch)));
    const int32_t q12 = int32_t(div_p12.divide(uint32_t(patch)));
    c[2] = (patch - q2 * patches[2]) << shift[2];
    c[1] = (q2 - q12 * patches[1]) << shift[1];
    c[0] = q12 << shift[0];
  }
  // Grid coordinates of position `within` of a patch relative to its corner: shifts and masks.
  POLYHEAD_HD void within_coords(int32_t within, int32_t* c) const {
    const int32_t sub = within >> sub_bits;
    within &= (1 << sub_bits) - 1;
    c[2] = within & ((1 << inner[2]) - 1);
    c[1] = (within >> inner[2]) & ((1 << inner[1]) - 1);
    c[0] = within >> (inner[2] + inner[1]);
    c[0] += sub_dim == 0 ? sub << inner[0] : 0;
    c[1] += sub_dim == 1 ? sub << inner[1] : 0;
    c[2] += sub_dim == 2 ? sub << inner[2] : 0;
  }
  // Grid coordinates of position `pos`: for a multiple of 2^sub_bits, the corner of the
  // (sub-)patch it starts, where a TMA box of the patch view begins (fwd_ws/tensor_maps.h).
  POLYHEAD_HD void coords(int32_t pos, int32_t* c) const {
    int32_t d[3];
    patch_corner(pos >> patch_bits, c);
    within_coords(pos & ((1 << patch_bits) - 1), d);
    c[0] += d[0];
    c[1] += d[1];
    c[2] += d[2];
  }
  POLYHEAD_HD int32_t row_major(const int32_t* c) const {
    return (c[0] * grid[1] + c[1]) * grid[2] + c[2];
  }
  // Token of the first position of patch `patch`; once per tile in the kernels.
  POLYHEAD_HD int32_t patch_origin(int32_t patch) const {
    int32_t c[3];
    patch_corner(patch, c);
    return row_major(c);
  }
  // Token offset of position `within` of a patch from the patch's corner.
  POLYHEAD_HD int32_t within_offset(int32_t within) const {
    int32_t c[3];
    within_coords(within, c);
    return row_major(c);
  }
  // The row-major token at position p.
  POLYHEAD_HD int32_t token(int32_t p) const {
    if (!patched) return p;
    return patch_origin(p >> patch_bits) + within_offset(p & ((1 << patch_bits) - 1));
  }
};

}  // namespace polyhead::cuda
