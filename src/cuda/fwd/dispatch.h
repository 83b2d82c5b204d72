// The forward dispatcher of the cuda backend: which compiled kernel runs a problem (or why
// none does), and the call itself.
#pragma once

#include <string>
#include <vector>

#include "polyhead/attention.h"
#include "polyhead/problem.h"

namespace polyhead::cuda {

// Which tensor-core kernel family runs a 16-bit problem: the Hopper wgmma kernel where it is
// compiled for the device (cc 9.0 and the head dims of fwd_sm90/), else the mma.sync kernel.
// `ws` is the warp-specialized Hopper kernel (fwd_ws/), which `automatic` picks on cc 9.0 for
// the formula masks (none, causal, windows); forced, it also runs block maps in token order,
// and what it cannot run throws Error.
enum class FwdFamily { automatic, mma_sync, wgmma, ws };

// Internal knobs for tests and benchmarks; users never need them.
struct FwdOverrides {
  bool force_block_map = false;  // run no-mask and window masks through the block-map path
  FwdFamily family = FwdFamily::automatic;  // wgmma where unavailable throws Error
  // Persistent kernels (wgmma): at most this many CTAs; 0 = as many as fit on the SMs at once,
  // < 0 = one per item.
  int max_ctas = 0;
  // Neighborhood masks of rank 2 and 3 in patch order (token_order.h) on the wgmma kernel
  // (NA-2D 17 x 17 at d128 on the H200: 55.2 against 31.6 TFLOP/s in row order).
  bool patch_order = true;
  // Decode (one query row) with grouped heads: the group's query heads as the rows of one tile
  // (dispatch.cpp, packable_decode).
  bool pack_gqa = true;
  // Split-KV on the wgmma kernel (params.h, split_combine.h): 0 = the dispatcher decides,
  // 1 = never, n > 1 = n shares of every query tile's key tiles.
  int kv_splits = 0;
  // The warp-specialized kernel in its persistent form (fwd_ws/persistent.cuh; slower than one
  // CTA per item on the H200 except d256 at 4k-8k keys, docs/cuda-forward.md): one CTA per SM
  // over the work list, then the exact pass over listed items.
  bool ws_persistent = false;
  // Rank-2 neighborhoods in patch order on the warp-specialized kernel with the pair's
  // neighborhood tiles (FwdWsNaTile, tile_size.h: 64 x 64 on one consumer warpgroup, two CTAs per
  // SM; NA-2D 17x17 171.0 TFLOP/s against 109.6 on 128 x 128 tiles, gpu-ab calls 14-32); one CTA
  // per item (ws_persistent does not apply).
  bool ws_na_tiles = true;
#if POLYHEAD_CUDA_TIMELINE
  // Where the warp-specialized kernel writes its phase timestamps (timeline.h), or null.
  unsigned long long* timeline = nullptr;
#endif
};

Status fwd_supports(const AttentionProblem& p, const ProblemShape& s);

// Runs the forward pass on `stream` (a cudaStream_t; nullptr = the default stream) without
// synchronizing the host. `p` must have passed fwd_supports().
void fwd_run(const AttentionProblem& p, const ProblemShape& s, void* stream,
             const FwdOverrides& overrides = {});

// One line per compiled configuration, for `info` and the docs: "bf16 128x128: tile 128x64,
// 4 warps".
std::vector<std::string> fwd_configurations();

}  // namespace polyhead::cuda
