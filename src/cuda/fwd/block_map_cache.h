// The device cache of compiled block maps (block_map_device.h), so that a repeated call skips
// the host compilation and the upload:
//   - masks that are pure functions of their parameters (no mask, windows, neighborhoods, S2,
//     slices, per-head lists of those) are keyed by their text and kept for the process;
//   - user block masks (BlockMask: bits on the host, which may change between calls behind the
//     same pointer) are keyed by their bytes. Every lookup hashes them and compares them with
//     the entry's own copy, so a changed mask is a miss, never a stale map. Their entries are
//     evicted least recently used once kernels no longer read them (an event recorded after
//     each call's launches), within their own byte budget.
// A map that fits no budget is compiled and uploaded per call, as before the cache.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "cuda/fwd/block_map_device.h"
#include "cuda/fwd/token_order.h"

namespace polyhead::cuda {

struct CachedBlockMap {
  FwdBlockMap map;
  // Tile elements the kernel computes over all (sequence, head, query tile) rows, a partial
  // tile (mask, Inf/NaN test of V) counted as 1.25 full ones: the dispatcher compares tile
  // shapes with it.
  double work = 0;
  bool by_content = false;  // a user block mask's entry
  // Holds a by-content entry until the caller's kernels are queued: the last copy's release
  // records the entry's use on the stream of the lookup, after which it may be evicted once
  // that use completes. Keep it until every launch that reads `map` has been made.
  std::shared_ptr<void> hold;
};

// Returns the device arrays, made visible to `stream` (an event wait), or nullopt when the
// mask is neither kind above (or its bits are not contiguous) or its entry fits no budget.
// With `order`, the map over patch-order positions (patch_map.h).
std::optional<CachedBlockMap> cached_block_map(const AttentionProblem& p, const ProblemShape& s,
                                               TileShape tile, int device, void* stream,
                                               const TokenOrder* order = nullptr);

// For tests: the by-content entries now held, their bytes (device arrays plus the host copy
// of the mask), and their budget (default 256 MiB). Setting a smaller one evicts idle entries
// down to it at once; entries still read by queued kernels go at a later insertion.
struct BlockMapCacheStats {
  size_t by_content_entries = 0;
  size_t by_content_bytes = 0;
};
BlockMapCacheStats block_map_cache_stats();
void set_block_map_content_budget(size_t bytes);

}  // namespace polyhead::cuda
