// Neighborhood masks in patch order (token_order.h): whether a problem can run that way on a
// tile shape, and its block map compiled over patch-order positions, in the CSR form of
// block_map_device.h. The kernels then load and store rows through the order.
#pragma once

#include <optional>

#include "cuda/fwd/block_map_device.h"
#include "cuda/fwd/token_order.h"
#include "polyhead/block_map.h"
#include "polyhead/problem.h"

namespace polyhead::cuda {

// The patch order for `p` on `tile` (tile.m = 64 or 128, tile.n = 64 or 128; patches of 128
// positions either way, a 64-row tile being half of one), or nullopt when the problem does not
// qualify: a neighborhood mask of rank 2 or 3 on every head, a batch of
// equal sequences (no cu_seqlens), no ALiBi (its distances are token positions), and a grid
// whose extents some power-of-two patch of 128 tokens divides. Of those patches (and, for
// 64-key tiles, of their splits into two sub-patches) it picks the one whose neighborhoods
// reach the fewest key tiles.
std::optional<TokenOrder> choose_patch_order(const AttentionProblem& p, const ProblemShape& s,
                                             TileShape tile);

// The block map of `p` over patch-order positions: query tile t is patch t (tile.m = 128) or
// the half t % 2 of patch t / 2 (tile.m = 64, the sub-patch where the order has 64-position
// ones), its key tiles are the patches (or sub-patches, tile.n = 64) its neighborhoods reach,
// full or partial with their row bitmasks. Every (sequence, head) shares one set of rows.
HostBlockMap build_patch_block_map(const AttentionProblem& p, const ProblemShape& s,
                                   const TokenOrder& order, TileShape tile);

}  // namespace polyhead::cuda
