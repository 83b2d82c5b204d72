// The recomputation of an item of the warp-specialized forward kernel (kernel.cuh) whose O
// ends non-finite. A partial tile whose V holds Inf/NaN puts 0 * Inf = NaN into rows that
// cannot see that key, so an item with partial tiles whose O is not finite is computed again,
// tile by tile, with the Inf/NaN test and the exact path of exact_pv.cuh. The producer is done
// by then; the consumers load the tiles themselves.
//   With ping-pong (d128) each consumer warpgroup decides alone, so that warpgroup 0 goes on to
//     its epilogue while warpgroup 1 finishes its last products; a test over both had held it
//     there (1.7% of the window's ncu samples, call 48). A warpgroup that recomputes waits
//     until the other has released every stage, then keeps K, V in stage cw and its P over that
//     stage's K.
//   Otherwise the consumers decide together and keep K, V in stage 0 and P in stage 1.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/fwd/exact_pv.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/mainloop.cuh"
#include "cuda/fwd_sm90/wgmma.cuh"
#include "cuda/fwd_ws/consumer.cuh"
#include "cuda/fwd_ws/copies.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

// Named barrier `id` over kThreads consumer threads, and its OR of x over them. The consumers
// alone use barrier 1 (the producer warp has left by then); one consumer warpgroup alone uses
// 6 + its index.
template <int kThreads>
__device__ __forceinline__ void named_sync(int id) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "n"(kThreads) : "memory");
}
template <int kThreads>
__device__ __forceinline__ bool named_or(int id, bool x) {
  uint32_t r = 0;
  asm volatile(
      "{\n"
      ".reg .pred p, q;\n"
      "setp.ne.u32 p, %1, 0;\n"
      "bar.red.or.pred q, %2, %3, p;\n"
      "selp.u32 %0, 1, 0, q;\n"
      "}\n"
      : "=r"(r)
      : "r"(uint32_t(x)), "r"(id), "n"(kThreads)
      : "memory");
  return r != 0;
}
template <int kThreads>
__device__ __forceinline__ bool consumer_or(bool x) {
  return named_or<kThreads>(1, x);
}
__device__ __forceinline__ bool warpgroup_or(int cw, bool x) {
  return named_or<128>(6 + cw, x);
}

// The item again, by the warpgroups of `cta` (both consumers: kThreads threads; or consumer
// warpgroup c.cw alone): K, V of each tile into stage `st` on barrier `bar`, P into `sp`
// (rows from sp_row0).
template <typename T, bool kPatched, bool kWarpgroup>
__device__ __forceinline__ void recompute_item(
    float (&o)[1][T::kDTiles][4], OnlineSoftmax<T>& softmax, const FwdParams& p, const WorkTile& w,
    const KeyTiles<T::kBlockM, T::kBlockN>& tiles, const WsRing<T>& ring, const WsConsumer& c,
    float sl2, unsigned char* smem_raw, const CUtensorMap* tk, const CUtensorMap* tv) {
  using Elem = typename T::Elem;
  const uint32_t raw = ptx::smem_u32(smem_raw);
  const int st = kWarpgroup ? c.cw : 0;
  const uint32_t bar = ring.redo(kWarpgroup ? c.cw : 0);
  const int tid = kWarpgroup ? (c.ctid & 127) : c.ctid;
  const Elem* v_tile = reinterpret_cast<const Elem*>(smem_raw + (ring.v(st) - raw));
  Elem* p_scratch =
      reinterpret_cast<Elem*>(smem_raw + ((kWarpgroup ? ring.k(st) : ring.k(1)) - raw));
  const int sp_row0 = kWarpgroup ? 64 * c.cw : 0;
  constexpr int kThreads = kWarpgroup ? 128 : T::kThreads;  // who shares the barriers below
  const int named = kWarpgroup ? 6 + c.cw : 1;
  const int32_t kv_head = w.head / p.group;
  zero_o<T>(o);
  softmax = OnlineSoftmax<T>();
  for (int32_t n = 0; n < tiles.count; ++n) {
    const KeyTileRef tile = tiles[n];
    if (tid == 0) {
      tma::arrive_expect_tx(bar, T::kBytesStage);
      load_kv_ws<T, kPatched>(ring.k(st), tk, tv, bar, bar, p, w, kv_head, tile.index);
    }
    tma::wait(bar, uint32_t(n & 1));
    const bool exact =
        tile.slot != -1 &&
        named_or<kThreads>(
            named, v_tile_nonfinite<T, kThreads>(reinterpret_cast<const uint16_t*>(v_tile), tid));
    float sc[1][T::kNTiles][4];
    issue_qk_sm90<T>(sc, ring.q(), ring.k(st), c.cw);
    wait_qk_sm90<T>(sc);
    // The window's rules per tile (no RowWindow): with its own bounds, this rare path took the
    // d64 kernel's spills from 56 / 72 to 100 / 84 bytes (stores / loads).
    ws_scores<T>(sc, p, w, tile, nullptr, c.warp_row0, c.lane);
    softmax.update(sc, o, sl2);
    if (!exact) {
      gemm_pv_sm90<T>(o, sc, ring.v(st));
    } else {
      if (kWarpgroup) named_sync<kThreads>(named);  // every warp's S is done before P overwrites K
      exact_pv<T>(o, sc, p, w, tile, p_scratch, v_tile, c.warp_row0, c.lane, sp_row0);
      if (kWarpgroup) sm90::fence_proxy_async();  // P's writes before the next copy over them
    }
    named_sync<kThreads>(named);  // everyone is done with the stage before the next copies
  }
}

// After the item's main loop: the recomputation where the item has partial tiles and O ended
// non-finite (see the top of this file for who decides and where the tiles go).
template <typename T, bool kPatched>
__device__ __forceinline__ void recompute_nonfinite(bool partial, float (&o)[1][T::kDTiles][4],
                                                    OnlineSoftmax<T>& softmax, const FwdParams& p,
                                                    const WorkTile& w,
                                                    const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                                    const WsRing<T>& ring, const WsConsumer& c,
                                                    float sl2, unsigned char* smem_raw,
                                                    const CUtensorMap* tk, const CUtensorMap* tv) {
  if constexpr (T::kPingPong) {
    if (!(partial && warpgroup_or(c.cw, !isfinite(o_sum<T>(o))))) return;
    // The other warpgroup's last releases. It has released every earlier tile, since the
    // producer could load the last ones, so these waits see no older phase.
    for (int32_t g = tiles.count > T::kStages ? tiles.count - T::kStages : 0; g < tiles.count;
         ++g) {
      tma::wait(ring.empty(ring.slot(g)), ring.parity(g));
    }
    recompute_item<T, kPatched, true>(o, softmax, p, w, tiles, ring, c, sl2, smem_raw, tk, tv);
  } else {
    if (!(partial && consumer_or<T::kThreads>(!isfinite(o_sum<T>(o))))) return;
    recompute_item<T, kPatched, false>(o, softmax, p, w, tiles, ring, c, sl2, smem_raw, tk, tv);
  }
}

}  // namespace polyhead::cuda
