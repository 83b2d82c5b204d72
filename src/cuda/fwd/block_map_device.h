// The generic mask path of the forward kernels: the host compiles the problem's BlockMap for
// the kernel's tile shape (core/, every mask kind) into the CSR arrays of FwdBlockMap, which
// the dispatcher uploads with the call's other small inputs (device_upload.h).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/problem_access.h"
#include "cuda/fwd/params.h"
#include "cuda/fwd/token_order.h"
#include "polyhead/block_map.h"
#include "polyhead/problem.h"

namespace polyhead::cuda {

struct HostBlockMap {
  std::vector<int32_t> row_start;  // [nseq * Hq]
  std::vector<int32_t> row_ptr;    // [rows + 1]
  std::vector<int32_t> tiles;      // [entries][2]: key tile, partial slot or -1
  std::vector<uint32_t> bits;      // [slots][tile.m][tile.n / 32]
};

// Compiles `p.mask` over every sequence for `tile` (tile.n a multiple of 32). Heads in one
// row group of the mask rule and sequences of one geometry share their rows. Throws Error if
// a count overflows int32.
HostBlockMap build_block_map(const AttentionProblem& p, const ProblemShape& s,
                             const std::vector<detail::Sequence>& seqs, TileShape tile);

// Block maps of masks that are pure functions of their parameters (no mask, windows,
// neighborhoods, S2, per-head lists of those) are kept on the device after their first use, so
// a repeated call skips the host compilation and the upload. Returns the device arrays, made
// visible to `stream` (an event wait), or nullopt when the mask holds tensor data (a user
// block mask can change between calls behind the same pointer) or the cache is full (256 MiB).
struct CachedBlockMap {
  FwdBlockMap map;
  // Tile elements the kernel computes over all (sequence, head, query tile) rows, a partial
  // tile (mask, Inf/NaN test of V) counted as 1.25 full ones: the dispatcher compares tile
  // shapes with it.
  double work = 0;
};
// With `order`, the map over patch-order positions (patch_map.h).
std::optional<CachedBlockMap> cached_block_map(const AttentionProblem& p, const ProblemShape& s,
                                               TileShape tile, int device, void* stream,
                                               const TokenOrder* order = nullptr);

}  // namespace polyhead::cuda
