// Parameters of the forward attention kernels: one plain struct, filled on the host by the
// dispatcher (dispatch.cpp) and passed by value (__grid_constant__) to every kernel of the
// fwd and fwd_simt families. No CUDA types, so host C++ can include it.
#pragma once

#include <cstdint>

#include "core/mask_policy.h"  // POLYHEAD_HD
#include "cuda/fwd/fast_div.h"
#include "cuda/fwd/token_order.h"

namespace polyhead::cuda {

// Where a query tile's key tiles come from.
enum class FwdMaskMode : int32_t {
  kWindow = 0,    // by formula inside the kernel (no mask, causal, sliding window)
  kBlockMap = 1,  // from a compiled BlockMap uploaded to the device (every other kind)
};

// The compiled BlockMap of a problem on the device (block_map_device.h builds it).
//   row_start[b * Hq + h] + q_tile  is the CSR row of (sequence b, head h, query tile);
//   row_ptr[row] .. row_ptr[row + 1] index `tiles`, ascending key tiles;
//   tiles[e] = {key tile, partial slot or -1 when the tile is full};
//   bits[slot][r][w] bit c: row r of the tile may see key 32 w + c of the tile.
struct FwdBlockMap {
  const int32_t* row_start = nullptr;  // [nseq * Hq]
  const int32_t* row_ptr = nullptr;    // [rows + 1]
  const int32_t* tiles = nullptr;      // [entries][2]
  const uint32_t* bits = nullptr;      // [partial tiles][kBlockM][kBlockN / 32]
};

// Strides are in elements; the head dimension (stride 1) is not stored.
struct FwdParams {
  const void* q = nullptr;  // [B, Sq, Hq, Dqk]
  const void* k = nullptr;  // [B, Sk, Hkv, Dqk]
  const void* v = nullptr;  // [B, Sk, Hkv, Dv]
  void* o = nullptr;        // [B, Sq, Hq, Dv], input dtype or f32 (o_f32)
  float* lse = nullptr;     // [B, Hq, Sq] f32, optional
  int64_t q_batch_stride = 0, q_row_stride = 0, q_head_stride = 0;
  int64_t k_batch_stride = 0, k_row_stride = 0, k_head_stride = 0;
  int64_t v_batch_stride = 0, v_row_stride = 0, v_head_stride = 0;
  int64_t o_batch_stride = 0, o_row_stride = 0, o_head_stride = 0;
  int64_t lse_batch_stride = 0, lse_head_stride = 0, lse_row_stride = 0;

  int32_t batch = 0;               // sequences (nseq for varlen)
  int64_t rows_q = 0, rows_k = 0;  // dimension 1 of q and of k, v (TMA maps, fwd_ws/)
  int32_t seqlen_q = 0;            // per sequence (ignored for varlen: read from cu_seqlens)
  int32_t seqlen_k = 0;
  int32_t heads_q = 0;
  int32_t group = 1;  // Hq / Hkv: query head h reads kv head h / group
  // Varlen: int32 offsets [nseq + 1] on the device, with element strides.
  const int32_t* cu_seqlens_q = nullptr;
  const int32_t* cu_seqlens_k = nullptr;
  int64_t cu_q_stride = 1, cu_k_stride = 1;

  // Scores. In the plain path the kernel keeps raw dot products and folds
  // scale_log2 = scale * log2(e) into exp2; with `transform` it rewrites every score to
  // log2 units first (scale, softcap, ALiBi), which also covers scale <= 0.
  float scale = 1.0f;
  float scale_log2 = 1.0f;
  bool transform = false;
  float softcap = 0.0f;          // > 0: s = c * tanh(s / c)
  float softcap_inv = 0.0f;      // 1 / softcap (the kernels divide by no variable: note in ptx.cuh)
  const float* alibi = nullptr;  // [Hq] slopes, element stride alibi_stride
  const float* sinks = nullptr;  // [Hq] sink logits, element stride sinks_stride
  int64_t alibi_stride = 1, sinks_stride = 1;
  bool o_f32 = false;

  // Masks. The window (left, right; -1 unbounded) is placed by pos(i) = i + Sk - Sq
  // (bottom-right) or i (top_left); ALiBi distances use the same pos(i).
  FwdMaskMode mask_mode = FwdMaskMode::kWindow;
  int64_t window_left = -1, window_right = -1;
  bool top_left = false;
  FwdBlockMap block_map;

  // Grid: blockIdx.x walks query tiles (the last tile first), blockIdx.y heads, blockIdx.z
  // sequences. For varlen the x range is floor(total_q / kBlockM) + nseq virtual tiles, of
  // which sequence b owns [floor(cu_q[b] / kBlockM) + b, ... + ceil(len_b / kBlockM)).
  int32_t q_tiles = 0;  // gridDim.x
  // Persistent kernels (fwd_sm90/) instead launch min(work items, SMs x kMinBlocksPerSm,
  // max_ctas if > 0) CTAs that walk the same tiles as a list (schedule.h).
  int32_t max_ctas = 0;     // < 0: one CTA per work item
  bool slot_major = false;  // work-item order (schedule.h)
  int32_t work_items = 0;   // q_tiles * heads_q * (batch, or 1 for varlen), < 2^31
  FastDiv div_outer;        // slot-major: by heads_q * batch; head-major: by q_tiles
  FastDiv div_heads;        // by heads_q
  // Split-KV (wgmma kernel only; split_combine.h): with kv_splits > 1 the list holds every item
  // once per split s (item x: s = x / base items), split s visits its share of the query tile's
  // key tiles, and the epilogue writes that share's normalized O and log-sum-exp (natural log,
  // without the sinks) to split_o / split_lse at logical row r = (batch * Sq + token) * Hq +
  // head (batch 0 and the packed token index for varlen); a second kernel combines them.
  int32_t kv_splits = 1;
  FastDiv div_splits;          // by the items of one split
  float* split_o = nullptr;    // [kv_splits][split_rows][Dv]
  float* split_lse = nullptr;  // [kv_splits][split_rows]
  int64_t split_rows = 0;
  // Patch order (token_order.h; wgmma kernel and block-map masks only): tile row r of position
  // p reads and writes token order.token(p); the block map is compiled over positions. Last,
  // so the fields before it keep their offsets in the kernels' parameter space.
  TokenOrder order;
  // The persistent warp-specialized kernel (fwd_ws/persistent.cuh): work items whose partial
  // tiles met Inf/NaN in V, for the exact pass after it (fwd_ws/exact_items.cuh). Null: the
  // one-CTA-per-item kernel, which recomputes such items itself.
  int32_t* redo_count = nullptr;   // zeroed before the launch
  uint32_t* redo_items = nullptr;  // [work_items]
  // The one-CTA-per-item warp-specialized kernel: O leaves by TMA stores through its `to`
  // tensor map (fwd_ws/epilogue.cuh); set by its launch where O suits TMA.
  bool o_tma = false;
#if POLYHEAD_CUDA_TIMELINE
  // Phase timestamps of the warp-specialized kernel (timeline.h; development builds only).
  unsigned long long* timeline = nullptr;  // [CTAs][kTimelineFields], or null
#endif
};

}  // namespace polyhead::cuda
