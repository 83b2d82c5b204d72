// The choice of a forward kernel configuration (kernel_table.h) for a problem: which family
// and tile, the patch order, the split-KV shares, and the helpers the dispatcher shares with it.
#include "cuda/fwd/select.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <optional>
#include <string>

#include "core/problem_access.h"
#include "cuda/cuda_check.h"
#include "cuda/fwd/patch_map.h"
#include "polyhead/error.h"

namespace polyhead::cuda {

// The formula path covers no mask and windows without sink tokens; every other kind goes
// through a compiled block map.
bool formula_mask(const MaskSpec& m) {
  if (m.is_none()) return true;
  const auto* w = m.get_if<WindowMask>();
  return w != nullptr && w->sink == 0;
}

// Row strides of a [B, S, H, D] tensor in elements, and whether they and the pointer allow
// `bytes`-wide vector accesses of `esize`-byte elements.
bool aligned(const TensorView& t, int64_t bytes) {
  const int64_t esize = dtype_size(t.dtype), elems = bytes / esize;
  if (reinterpret_cast<uintptr_t>(t.data) % uintptr_t(bytes) != 0) return false;
  for (int d = 0; d < 3; ++d) {
    if (t.shape[d] > 1 && t.stride[d] % elems != 0) return false;
  }
  return true;
}

int compute_capability(int device) {
  int major = 0, minor = 0;
  POLYHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  POLYHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

namespace {

// The sm_90a code of the wgmma and warp-specialized kernels runs on compute capability 9.0
// exactly.
const TcConfig* find_sm90(const AttentionProblem& p, const ProblemShape& s,
                          TcKind kind = TcKind::wgmma) {
  const TcConfig* c = find_tc(p.q.dtype, s.head_dim_qk, s.head_dim_v, kind);
  if (c == nullptr || compute_capability(p.q.device.index) != 90) return nullptr;
  return c;
}

}  // namespace

// One query row per sequence (decode) whose heads share kv heads, under a mask that lets that
// row see every key (none, or a bottom-right window unbounded on the left: the row sits at the
// last key), without per-head position or logit terms (ALiBi, sinks): the group's heads can be
// the rows of one tile (FwdOverrides::pack_gqa), so each kv head's keys are read once per
// group instead of once per query head, and a 128-row tile holds group rows instead of one.
bool packable_decode(const AttentionProblem& p, const ProblemShape& s) {
  if (s.varlen || s.seqlen_q != 1 || s.heads_q == s.heads_kv || p.alibi_slopes || p.sinks) {
    return false;
  }
  if (p.mask.is_none()) return true;
  const auto* w = p.mask.get_if<WindowMask>();
  return w != nullptr && w->left < 0 && w->right >= 0 && w->sink == 0 &&
         w->align == Alignment::bottom_right;
}

namespace {

// Why the warp-specialized kernel (fwd_ws/) cannot run a problem, or "" when it can. Its TMA
// copies need 16-byte aligned tensors and strides; its grid is (query tiles, heads, batch) with
// at most 65535 heads and sequences; it has no split-KV or packed-GQA instance.
std::string ws_refusal(const AttentionProblem& p, const ProblemShape& s, const FwdOverrides& o) {
  if (!aligned(p.q, 16) || !aligned(p.k, 16) || !aligned(p.v, 16)) {
    return "q, k and v need 16-byte aligned data and token and head strides (TMA)";
  }
  if (s.heads_q > 65535 || (!s.varlen && s.batch > 65535)) {
    return "at most 65535 query heads and sequences";
  }
  if (o.kv_splits > 1) return "split-KV runs on the wgmma kernel";
  if (o.pack_gqa && packable_decode(p, s)) return "packed GQA decode runs on the wgmma kernel";
  return "";
}

}  // namespace

// The query tiles of the grid's x dimension: per sequence, or for varlen the virtual tiles of
// work.cuh. seqlen_q is s.seqlen_q unless GQA packing made the group the rows.
int64_t query_tiles(const AttentionProblem& p, const ProblemShape& s, int64_t seqlen_q,
                    TileShape tile) {
  return s.varlen ? p.q.shape[1] / tile.m + s.batch : (seqlen_q + tile.m - 1) / tile.m;
}

namespace {

// The (query tile, head, sequence) work items of a problem in tiles of `tile` rows.
int64_t work_items(const AttentionProblem& p, const ProblemShape& s, TileShape tile) {
  return query_tiles(p, s, s.seqlen_q, tile) * s.heads_q * (s.varlen ? 1 : s.batch);
}

}  // namespace

// Split-KV (params.h): how many shares of every query tile's key tiles. Forced by the override,
// else only where the persistent grid would leave most SMs idle: fewer work items than half the
// SMs (decode with few sequences and kv heads; GQA packing has already made each kv head one
// item), at least 8 key tiles per share, at most 32 shares, and not varlen (whose sequences
// differ in length). Then items x splits fill at most two CTAs per SM: one round of the
// persistent grid (5 shares of 64 items on 132 SMs would leave 56 items for a second round).
int32_t kv_splits(const FwdOverrides& o, int64_t items, const ProblemShape& s, TileShape tile,
                  int device) {
  if (o.kv_splits > 0) return o.kv_splits;
  if (s.varlen) return 1;
  int sms = 0;
  POLYHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if (items * 2 > sms) return 1;
  const int64_t key_tiles = (s.seqlen_k + tile.n - 1) / tile.n;
  const int64_t by_sms = 2 * int64_t(sms) / items;
  return int32_t(std::clamp<int64_t>(std::min(by_sms, key_tiles / 8), 1, 32));
}

namespace {

// A block-map mask whose blocks are narrower than the wgmma kernel's 128-key tiles (S2 with
// 64-key blocks: half of each strided tile is masked) makes that kernel compute up to twice
// the tiles of the mma.sync kernel's 128 x 64 ones. For parameter-only masks, whose maps are
// compiled once and cached for both shapes, the wgmma kernel keeps the problem unless its map
// costs more than 1.25x the other's: the dense speed ratio of the two families at d128 on the
// H200 (440 against 343 TFLOP/s). S2 (block 64, vstride 8) at 16k measured 186.5 TFLOP/s on
// the wgmma kernel against 299.1 on the mma.sync one (grid runs at 8a06785 and 4935ecd).
// Returns the chosen configuration and, in `map`, its cached block map when there is one.
const TcConfig* fit_block_map(const AttentionProblem& p, const ProblemShape& s,
                              const TcConfig* sm90, cudaStream_t stream,
                              std::optional<CachedBlockMap>& map) {
  const TcConfig* mma = find_tc(p.q.dtype, s.head_dim_qk, s.head_dim_v);
  if (mma == nullptr) return sm90;
  map = cached_block_map(p, s, sm90->tile, p.q.device.index, stream);
  // Not cached, or a user block mask: one map per call, for the wgmma kernel's tile (a second
  // one would double the host work of each new mask).
  if (!map || map->by_content) return sm90;
  auto other = cached_block_map(p, s, mma->tile, p.q.device.index, stream);
  if (!other || map->work <= 1.25 * other->work) return sm90;
  map = other;
  return mma;
}

}  // namespace

// The tensor-core configuration that runs a 16-bit problem, with its patch order and, when
// the device cache holds it, its block map (fit_block_map).
const TcConfig* select_tc(const AttentionProblem& p, const ProblemShape& s, cudaStream_t stream,
                          const FwdOverrides& overrides, std::optional<TokenOrder>& order,
                          std::optional<CachedBlockMap>& cached) {
  const TcConfig* sm90 = overrides.family == FwdFamily::mma_sync ? nullptr : find_sm90(p, s);
  // Where both families run a problem, the wgmma kernel is the faster at every length measured
  // on the H200 since Dqk 64 runs two 128-row CTAs per SM (dense 512 tokens 300.5 against
  // 225.7 TFLOP/s, causal 512 171.6 against 139.9; docs/cuda-forward.md).
  POLYHEAD_CHECK(sm90 != nullptr || overrides.family != FwdFamily::wgmma,
                 "cuda backend: the wgmma kernel family cannot run this problem");
  const TcConfig* tc = sm90 != nullptr ? sm90 : find_tc(p.q.dtype, s.head_dim_qk, s.head_dim_v);
  // Patch order serves neighborhoods over many query tiles; a forced split-KV (which has
  // its own instance) runs in token order. The forced ws family picks its own below.
  if (sm90 != nullptr && overrides.patch_order && overrides.kv_splits <= 1 &&
      s.head_dim_qk <= 192 && overrides.family != FwdFamily::ws) {
    order = choose_patch_order(p, s, sm90->tile);
  }
  // The warp-specialized kernel takes the problems of the formula masks (none, causal,
  // windows) that it can run, that want no split-KV, and whose sequences reach its tile's
  // kAutoMinKeys (tile_size.h, with the measurements), and rank-2 neighborhoods in patch order
  // where one 128-token patch per tile divides the grid (TMA boxes of the token grid,
  // fwd_ws/launch.cuh): NA-2D 17x17 on a 128x128 grid at d128 ran 106.6 TFLOP/s there against
  // 94.9 on the wgmma kernel (bench/results/gpu-ab_NVIDIA-H200_2026-11-28_call9.md). Forced,
  // it also runs block maps.
  const TcConfig* ws = overrides.family == FwdFamily::automatic || overrides.family == FwdFamily::ws
                           ? find_sm90(p, s, TcKind::ws)
                           : nullptr;
  // With FwdOverrides::ws_na_tiles (the default), the pair's 64-key neighborhood tiles instead.
  const TcConfig* ws_na =
      ws != nullptr && overrides.ws_na_tiles ? find_sm90(p, s, TcKind::ws_na) : nullptr;
  const TcConfig* ws_patched = ws_na != nullptr ? ws_na : ws;
  std::optional<TokenOrder> ws_order;
  if (ws_patched != nullptr && overrides.patch_order && overrides.kv_splits <= 1 &&
      (ws_patched->tile.n == 128 || ws_patched == ws_na)) {
    const auto* na = p.mask.get_if<NeighborhoodMask>();
    if (na != nullptr && na->rank == 2) ws_order = choose_patch_order(p, s, ws_patched->tile);
  }
  const std::string ws_why = ws == nullptr
                                 ? "no instance for this dtype and head dims on this device"
                                 : ws_refusal(p, s, overrides);
  if (overrides.family == FwdFamily::ws) {
    POLYHEAD_CHECK(ws_why.empty(),
                   "cuda backend: the warp-specialized kernel cannot run this problem (", ws_why,
                   "); it runs ", ws_configurations(), " on compute capability 9.0");
    tc = ws_order ? ws_patched : ws;
    order = ws_order;
  } else if (ws != nullptr && ws_why.empty() && formula_mask(p.mask) && ws->auto_min_keys >= 0 &&
             s.seqlen_k >= ws->auto_min_keys &&
             kv_splits(overrides, work_items(p, s, sm90->tile), s, sm90->tile, p.q.device.index) ==
                 1) {
    tc = ws;
  } else if (ws_order && ws_why.empty()) {
    tc = ws_patched;
    order = ws_order;
  } else if (sm90 != nullptr && !order && overrides.family == FwdFamily::automatic &&
             !formula_mask(p.mask)) {
    tc = fit_block_map(p, s, sm90, stream, cached);
  }
  return tc;
}

}  // namespace polyhead::cuda
