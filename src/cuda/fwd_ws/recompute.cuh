// The recomputation of an item of the warp-specialized forward kernel (kernel.cuh) whose O
// ends non-finite. A partial tile whose V holds Inf/NaN puts 0 * Inf = NaN into rows that
// cannot see that key, so an item with partial tiles whose O is not finite is computed again,
// tile by tile, with the Inf/NaN test and the exact path of exact_pv.cuh. The producer is done
// by then, so the consumers load the tiles themselves, into stage 0, with P in stage 1.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/fwd/exact_pv.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/mainloop.cuh"
#include "cuda/fwd_ws/consumer.cuh"
#include "cuda/fwd_ws/copies.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

// Barriers of the kThreads consumer threads alone (named barrier 1): the producer warp has left
// by the time they are used.
template <int kThreads>
__device__ __forceinline__ void consumer_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kThreads) : "memory");
}
template <int kThreads>
__device__ __forceinline__ bool consumer_or(bool x) {
  uint32_t r = 0;
  asm volatile(
      "{\n"
      ".reg .pred p, q;\n"
      "setp.ne.u32 p, %1, 0;\n"
      "bar.red.or.pred q, 1, %2, p;\n"
      "selp.u32 %0, 1, 0, q;\n"
      "}\n"
      : "=r"(r)
      : "r"(uint32_t(x)), "n"(kThreads)
      : "memory");
  return r != 0;
}

// After the item's main loop: the recomputation where the item has partial tiles and O ended
// non-finite in any consumer's rows.
template <typename T, bool kPatched>
__device__ __forceinline__ void recompute_nonfinite(bool partial, float (&o)[1][T::kDTiles][4],
                                                    OnlineSoftmax<T>& softmax, const FwdParams& p,
                                                    const WorkTile& w,
                                                    const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                                    const WsRing<T>& ring, const WsConsumer& c,
                                                    float sl2, unsigned char* smem_raw,
                                                    const CUtensorMap* tk, const CUtensorMap* tv) {
  if (!(partial && consumer_or<T::kThreads>(!isfinite(o_sum<T>(o))))) return;
  using Elem = typename T::Elem;
  const uint32_t raw = ptx::smem_u32(smem_raw);
  const Elem* v_tile = reinterpret_cast<const Elem*>(smem_raw + (ring.v(0) - raw));
  Elem* p_scratch = reinterpret_cast<Elem*>(smem_raw + (ring.k(1) - raw));
  zero_o<T>(o);
  softmax = OnlineSoftmax<T>();
  const int32_t kv_head = w.head / p.group;
  for (int32_t n = 0; n < tiles.count; ++n) {
    const KeyTileRef tile = tiles[n];
    if (c.ctid == 0) {
      tma::arrive_expect_tx(ring.redo(), T::kBytesStage);
      load_kv_ws<T, kPatched>(ring.k(0), tk, tv, ring.redo(), ring.redo(), p, w, kv_head,
                              tile.index);
    }
    tma::wait(ring.redo(), uint32_t(n & 1));
    const bool exact = tile.slot != -1 && consumer_or<T::kThreads>(v_tile_nonfinite<T>(
                                              reinterpret_cast<const uint16_t*>(v_tile), c.ctid));
    float sc[1][T::kNTiles][4];
    issue_qk_sm90<T>(sc, ring.q(), ring.k(0), c.cw);
    wait_qk_sm90<T>(sc);
    ws_scores<T>(sc, p, w, tile, c.warp_row0, c.lane);
    softmax.update(sc, o, sl2);
    if (!exact) {
      gemm_pv_sm90<T>(o, sc, ring.v(0));
    } else {
      exact_pv<T>(o, sc, p, w, tile, p_scratch, v_tile, c.warp_row0, c.lane);
    }
    consumer_sync<T::kThreads>();  // every consumer is done with stage 0 before the next copies
  }
}

}  // namespace polyhead::cuda
