// The forward kernel configuration for a problem (select.cpp): the dispatcher's choice among
// the compiled configurations of kernel_table.h, and the checks it shares with fwd_supports and
// fwd_run (dispatch.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

#include "cuda/fwd/block_map_cache.h"
#include "cuda/fwd/dispatch.h"
#include "cuda/fwd/kernel_table.h"
#include "cuda/fwd/token_order.h"
#include "polyhead/polyhead.h"

namespace polyhead::cuda {

// No mask, or a window without sink tokens: the kernels compute it by formula; every other
// kind goes through a compiled block map.
bool formula_mask(const MaskSpec& m);

// Whether the pointer and the batch, token and head strides of a [B, S, H, D] tensor allow
// `bytes`-wide vector accesses.
bool aligned(const TensorView& t, int64_t bytes);

int compute_capability(int device);

// One query row per sequence whose query heads share kv heads, under a mask that lets the row
// see every key: the group's heads can be the rows of one tile (FwdOverrides::pack_gqa).
bool packable_decode(const AttentionProblem& p, const ProblemShape& s);

// The query tiles of the grid's x dimension for `seqlen_q` rows per sequence.
int64_t query_tiles(const AttentionProblem& p, const ProblemShape& s, int64_t seqlen_q,
                    TileShape tile);

// How many shares of every query tile's key tiles (split-KV) for `items` work items.
int32_t kv_splits(const FwdOverrides& o, int64_t items, const ProblemShape& s, TileShape tile,
                  int device);

// The tensor-core configuration that runs a 16-bit problem, with its patch order and, when
// the device cache holds it, its block map.
const TcConfig* select_tc(const AttentionProblem& p, const ProblemShape& s, cudaStream_t stream,
                          const FwdOverrides& overrides, std::optional<TokenOrder>& order,
                          std::optional<CachedBlockMap>& cached);

}  // namespace polyhead::cuda
