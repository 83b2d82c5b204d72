// The TMA copies of the warp-specialized forward kernel (kernel.cuh): the boxes of a tile of
// rows in token or patch order, their loads into shared memory and their prefetches into L2,
// and a key tile's K and V. Issued by the producer thread, and by a consumer warpgroup's first
// thread when it computes an item again (recompute.cuh).
#pragma once

#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/token_order.h"
#include "cuda/fwd/work.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

// Where a copy's rows start in its tensor map: token order, the row of position `pos` (4-D
// maps, launch.cuh); patch order, the corner (row, column) on the 2-D token grid of the
// (sub-)patch that starts at position `pos` (5-D maps, one box of 2^sub_bits positions,
// row-major inside, as token_order.h orders a sub-patch).
struct WsRows {
  int32_t a, b;  // token order: a = first row; patch order: a = column, b = row of the corner
};
template <bool kPatched, int kBox>
__device__ __forceinline__ WsRows ws_rows(const TokenOrder& order, int32_t pos, int32_t first) {
  if constexpr (kPatched) {
    int32_t c[3];
    if constexpr (kBox == 128) {  // whole patches: only the patch's corner
      order.patch_corner(pos / 128, c);
    } else {
      order.coords(pos, c);
    }
    return {c[2], c[1]};
  } else {
    return {first + pos, 0};
  }
}
template <bool kPatched>
__device__ __forceinline__ void load_rows_ws(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                             int cb, int32_t head, WsRows at, int32_t batch) {
  if constexpr (kPatched) {
    tma::load_5d(dst, map, bar, cb * 64, head, at.a, at.b, batch);
  } else {
    tma::load_4d(dst, map, bar, cb * 64, head, at.a, batch);
  }
}
// The same box into the L2 cache only.
template <bool kPatched>
__device__ __forceinline__ void prefetch_rows_ws(const CUtensorMap* map, int cb, int32_t head,
                                                 WsRows at, int32_t batch) {
  if constexpr (kPatched) {
    tma::prefetch_l2_5d(map, cb * 64, head, at.a, at.b, batch);
  } else {
    tma::prefetch_l2_4d(map, cb * 64, head, at.a, batch);
  }
}

// The TMA boxes that hold positions [pos, pos + kRows) of one head, D columns: one per 64-column
// block, and in patch order one per block and (sub-)patch of T::kBlockN positions (the order's
// 2^sub_bits, launch.cuh checks), so two for a 128-row Q tile of 64-position sub-patches.
// fn(r, cb, at) per box: its first row r, its column block cb and its coordinates.
template <typename T, int kRows, int D, bool kPatched, typename Fn>
__device__ __forceinline__ void for_each_box_ws(const TokenOrder& order, int32_t pos, int32_t first,
                                                Fn fn) {
  constexpr int kBox = kPatched ? T::kBlockN : kRows;
#pragma unroll
  for (int r = 0; r < kRows; r += kBox) {
    const WsRows at = ws_rows<kPatched, kBox>(order, pos + r, first);
#pragma unroll
    for (int cb = 0; cb < D / 64; ++cb) fn(r, cb, at);
  }
}

// Those boxes into `dst` as 64-column blocks of kRows x 128 bytes, completing on `bar`.
template <typename T, int kRows, int D, bool kPatched>
__device__ __forceinline__ void load_tile_ws(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                             const TokenOrder& order, int32_t pos, int32_t first,
                                             int32_t head, int32_t batch) {
  for_each_box_ws<T, kRows, D, kPatched>(order, pos, first, [&](int r, int cb, WsRows at) {
    load_rows_ws<kPatched>(dst + uint32_t(cb) * (kRows * 128u) + uint32_t(r) * 128u, map, bar, cb,
                           head, at, batch);
  });
}

// Those boxes into the L2 cache only.
template <typename T, int kRows, int D, bool kPatched>
__device__ __forceinline__ void prefetch_tile_ws(const CUtensorMap* map, const TokenOrder& order,
                                                 int32_t pos, int32_t first, int32_t head,
                                                 int32_t batch) {
  for_each_box_ws<T, kRows, D, kPatched>(order, pos, first, [&](int, int cb, WsRows at) {
    prefetch_rows_ws<kPatched>(map, cb, head, at, batch);
  });
}

// Into L2, the Q tile (and under formula masks the first K and V tile) of the CTA that will most
// likely start when one of the resident CTAs ends: the one a full round of resident CTAs after
// this one in launch order (x fastest). A round is %nsmid x kMinBlocksPerSm CTAs; %nsmid counts
// SM ids, which PTX allows to exceed the SM count, and then this picks a CTA a little later,
// still one that starts soon. A CTA's Q is the one tile of its item that no other CTA has read
// (K and V tiles are shared with the neighbouring query tiles), so without this its first
// products wait for device memory. Not for varlen, whose item decode reads cu_seqlens.
template <typename T, bool kPatched>
__device__ __forceinline__ void prefetch_next_cta_ws(const CUtensorMap* tq, const CUtensorMap* tk,
                                                     const CUtensorMap* tv, const FwdParams& p) {
  if (p.cu_seqlens_q != nullptr) return;
  uint32_t sms;
  asm("mov.u32 %0, %%nsmid;" : "=r"(sms));
  uint32_t x = blockIdx.x + sms * uint32_t(T::kMinBlocksPerSm), y = blockIdx.y, z = blockIdx.z;
  while (x >= gridDim.x) x -= gridDim.x, ++y;  // a few rounds: gridDim.x is the query tiles
  while (y >= gridDim.y) y -= gridDim.y, ++z;
  if (z >= gridDim.z) return;  // this CTA is in the last round
  WorkTile w;
  if (!resolve_work_at<T::kBlockM>(p, int32_t(x), int32_t(y), int32_t(z), w)) return;
  prefetch_tile_ws<T, T::kBlockM, T::kHeadDimQK, kPatched>(tq, p.order, w.q_tile * T::kBlockM,
                                                           w.q_start, w.head, w.batch);
  // And its first key tile's K and V where the tiles follow from a formula (windows, causal,
  // none): with short sequences they are as cold as Q.
  if (p.mask_mode != FwdMaskMode::kWindow) return;
  const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
  if (tiles.count == 0) return;
  const int32_t kv_head = w.head / p.group, pos = tiles[0].index * T::kBlockN;
  prefetch_tile_ws<T, T::kBlockN, T::kHeadDimQK, kPatched>(tk, p.order, pos, w.k_start, kv_head,
                                                           w.batch);
  prefetch_tile_ws<T, T::kBlockN, T::kHeadDimV, kPatched>(tv, p.order, pos, w.k_start, kv_head,
                                                          w.batch);
}

// Key tile `tile`'s K and V into the stage at `stage`, K completing on k_bar and V on v_bar
// (the same barrier is fine: the caller then expects both byte counts on it).
template <typename T, bool kPatched>
__device__ __forceinline__ void load_kv_ws(uint32_t stage, const CUtensorMap* tk,
                                           const CUtensorMap* tv, uint32_t k_bar, uint32_t v_bar,
                                           const FwdParams& p, const WorkTile& w, int32_t kv_head,
                                           int32_t tile) {
  const int32_t pos = tile * T::kBlockN;
  load_tile_ws<T, T::kBlockN, T::kHeadDimQK, kPatched>(stage, tk, k_bar, p.order, pos, w.k_start,
                                                       kv_head, w.batch);
  load_tile_ws<T, T::kBlockN, T::kHeadDimV, kPatched>(stage + T::kBytesK, tv, v_bar, p.order, pos,
                                                      w.k_start, kv_head, w.batch);
}

}  // namespace polyhead::cuda
