// The warp-specialized Hopper forward kernel (sm_90a): FlashAttention-3's structure without its
// intra-warpgroup overlap. One CTA per (sequence, query head, 128-row query tile), three
// warpgroups (the neighborhood tiles: one per 64-row tile, two warpgroups, two CTAs per SM):
//   producer (warpgroup 0, 40 registers): one thread issues TMA copies of Q and of every K and
//     V tile into a ring of kStages stages, each completing on its stage's "full" mbarriers,
//     and reuses a stage once every consumer has arrived on its "empty" mbarrier;
//   consumers (warpgroups 1 and 2, 232 registers, 64 query rows each): wait for a stage, run
//     S = Q K^T, the masks and the online softmax, O += P V, and release the stage. No CTA-wide
//     barrier per tile, and no load addresses in the consumers' registers.
// Scores, masks, softmax and the epilogue are those of fwd/ and fwd_sm90/ (the consumer
// warpgroups' accumulators have the same layout). Key tiles come from work.cuh's KeyTiles:
// by formula (none, causal, windows) or from a block map, in token order.
//
// Shared memory: Q, then the stages, each K then V, every tile as 64-column 128-byte-swizzled
// blocks (the layout wgmma reads, sm90::desc_sw128), the TMA box of one copy.
//
// Partial tiles and Inf/NaN in V: the tensor cores multiply masked probabilities (0) by every
// value, so a non-finite value of a key that a row cannot see would turn that row into NaN. As
// in fwd_sm90/kernel.cuh, nothing is tested per tile: an item with partial tiles whose O ends
// non-finite is computed again by the consumers alone (the producer has finished), with the
// test and the exact path of exact_pv.cuh per partial tile (recompute.cuh).
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/fwd/epilogue.cuh"
#include "cuda/fwd/exact_pv.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/tile_size.h"
#include "cuda/fwd/timeline.h"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/mainloop.cuh"
#include "cuda/fwd_ws/consumer.cuh"
#include "cuda/fwd_ws/copies.cuh"
#include "cuda/fwd_ws/epilogue.cuh"
#include "cuda/fwd_ws/marks.cuh"
#include "cuda/fwd_ws/recompute.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

template <typename Elem_, int Dqk, int Dv, typename Tile_ = FwdWsTile<Dqk, Dv>>
struct FwdWsTraits : FwdTraitsBase<Elem_, Dqk, Dv, Tile_> {
  using Tile = Tile_;
  static constexpr int kMTiles = 1;
  static constexpr int kStages = Tile::kStages;
  static constexpr bool kOverlap = Tile::kOverlap, kPingPong = Tile::kPingPong;
  static constexpr bool kPrefetchBits = Tile::kPrefetchBits;  // consumer.cuh, BitsAhead
  static_assert(!kPrefetchBits || kOverlap, "block-map bits ahead: the overlapped schedule only");
  // The producer warpgroup and Tile::kConsumers consumer warpgroups (kThreads threads).
  static constexpr int kCtaThreads = 128 + Tile::kThreads;
  // setmaxnreg moves registers within the CTA's pool, which is what the CTA was launched
  // with: kCtaThreads x the launch bound's registers per thread (64k per SM over
  // kMinBlocksPerSm CTAs, in steps of 8). A setmaxnreg.inc past the pool waits forever: with
  // two CTAs of two consumers per SM the pool is 384 x 80, so the consumers get 104, not the 112
  // that 64k / 2 would allow; two CTAs of one consumer (256 x 128) give it 232.
  static constexpr int kLaunchRegs = 65536 / (Tile::kMinBlocksPerSm * kCtaThreads) / 8 * 8;
  static constexpr int kProducerRegs = Tile::kMinBlocksPerSm == 1 ? 40 : 24;
  static constexpr int kConsumerRegs =
      Tile::kMinBlocksPerSm == 1 || Tile::kConsumers == 1 ? 232 : 104;
  static_assert(128 * kProducerRegs + Tile::kThreads * kConsumerRegs <= kCtaThreads * kLaunchRegs,
                "setmaxnreg within the CTA's register pool");
  static constexpr uint32_t kBytesQ = Tile::kBlockM * Dqk * 2;
  static constexpr uint32_t kBytesK = Tile::kBlockN * Dqk * 2;
  static constexpr uint32_t kBytesV = Tile::kBlockN * Dv * 2;
  static constexpr uint32_t kBytesStage = kBytesK + kBytesV;
  static constexpr uint32_t kQBlockBytes = Tile::kBlockM * 128;  // one 64-column block of Q
  static constexpr uint32_t kOffStages = kBytesQ;
  static constexpr uint32_t kOffBar = kOffStages + kStages * kBytesStage;
  // q_full, k_full[kStages], v_full[kStages], empty[kStages], redo, q_empty, redo of
  // warpgroup 1 (and the timeline's wait counts)
  static constexpr uint32_t kSmemBytes =
      kOffBar + 8 * (4 + 3 * kStages) + kTimelineTallyBytes + 1024;  // + alignment
  __device__ static constexpr int v_index(int key, int col) {
    return int(sm90::swizzled_offset<Tile::kBlockN>(key, col) / 2);
  }
  static_assert(kSmemBytes <= 227 * 1024 / Tile::kMinBlocksPerSm - 1024,
                "shared memory of the SM's CTAs");
  static_assert(Dqk % 64 == 0 && Dv % 64 == 0, "64-column TMA boxes");
  static_assert(kBytesStage % 1024 == 0 && kBytesQ % 1024 == 0, "1024-byte swizzle atoms");
  // The recomputation (recompute.cuh): with ping-pong, consumer warpgroup cw keeps K, V in
  // stage cw and its 64 rows of P over that stage's K; otherwise the consumers keep K, V in
  // stage 0 and P (kBlockM x kBlockN) in stage 1.
  static_assert(kStages >= 2 && (kPingPong ? 64 * Tile::kBlockN * 2 <= kBytesK
                                           : Tile::kBlockM * Tile::kBlockN * 2 <= kBytesStage),
                "room for the recomputation's K, V and P");
};

// The producer's copy of the item's key tile n into ring position g (consumer.cuh, WsRing).
// The stage's previous tile, g - kStages, must have been released by the consumers' arrivals:
// completion g / kStages - 1 of its empty barrier.
template <typename T, bool kPatched>
__device__ __forceinline__ void produce_kv_ws(const WsRing<T>& ring, int32_t g,
                                              const CUtensorMap* tk, const CUtensorMap* tv,
                                              const FwdParams& p, const WorkTile& w,
                                              int32_t kv_head,
                                              const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                              int32_t n) {
  const int s = ring.slot(g);
  if (g >= T::kStages) ring_wait(ring, ring.empty(s), ring.parity(g) ^ 1u, 2);
  tma::arrive_expect_tx(ring.k_full(s), T::kBytesK);
  tma::arrive_expect_tx(ring.v_full(s), T::kBytesV);
  load_kv_ws<T, kPatched>(ring.k(s), tk, tv, ring.k_full(s), ring.v_full(s), p, w, kv_head,
                          tiles[n].index);
}

// The producer's first step: the three tensor maps into the descriptor cache.
__device__ __forceinline__ void prefetch_ws_maps(const CUtensorMap* tq, const CUtensorMap* tk,
                                                 const CUtensorMap* tv) {
  tma::prefetch_map(tq);
  tma::prefetch_map(tk);
  tma::prefetch_map(tv);
}

// Every mbarrier of the ring, by one thread, before the CTA's first barrier.
template <typename T>
__device__ __forceinline__ void init_ws_barriers(const WsRing<T>& ring) {
  tma::barrier_init(ring.q_full(), 1);
  for (int s = 0; s < T::kStages; ++s) {
    tma::barrier_init(ring.k_full(s), 1);
    tma::barrier_init(ring.v_full(s), 1);
    tma::barrier_init(ring.empty(s), T::kThreads);  // every consumer thread arrives
  }
  tma::barrier_init(ring.redo(0), 1);
  tma::barrier_init(ring.q_empty(), T::kThreads);
  tma::barrier_init(ring.redo(1), 1);
#if POLYHEAD_CUDA_TIMELINE
  for (int i = 0; i < kTimelineTallies; ++i) ptx::st_shared_u64(ring.tally(i), 0);
#endif
  tma::fence_barrier_init();
}

// The item's Q tile, completing on q_full.
template <typename T, bool kPatched>
__device__ __forceinline__ void load_q_ws(const WsRing<T>& ring, const CUtensorMap* tq,
                                          const FwdParams& p, const WorkTile& w) {
  tma::arrive_expect_tx(ring.q_full(), T::kBytesQ);
  load_tile_ws<T, T::kBlockM, T::kHeadDimQK, kPatched>(
      ring.q(), tq, ring.q_full(), p.order, w.q_tile * T::kBlockM, w.q_start, w.head, w.batch);
}

template <typename T, bool kPatched>
__global__ void __launch_bounds__(T::kCtaThreads, T::kMinBlocksPerSm)
    fwd_ws_kernel(const __grid_constant__ FwdParams p, const __grid_constant__ CUtensorMap tq,
                  const __grid_constant__ CUtensorMap tk, const __grid_constant__ CUtensorMap tv,
                  const __grid_constant__ CUtensorMap to) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  [[maybe_unused]] const uint64_t t_start = timeline_clock();  // written after the barrier
  const int tid = int(threadIdx.x);
  // Warp-uniform for ptxas (a shuffle from lane 0), so that it sizes each role's registers by
  // its setmaxnreg.
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  const uint32_t raw = ptx::smem_u32(smem_raw);
  const WsRing<T> ring(raw);
  // The CTA barrier comes first, and each role then works out only what it needs, the producer
  // issuing Q before it computes the key tiles. Those take about 170 instructions, most of them
  // 64-bit (window bounds); when all 12 warps ran them before the barrier, 3 per scheduler,
  // thread 0 crossed it 1.1-1.2k cycles after the CTA's start, against 10 cycles for a bare CTA
  // of this shape (bench/results/timeline_NVIDIA-H200_2026-11-29_call57.md,
  // dev/cuda_fwd/cta_turnaround.cu). gpu-ab call 62: window d128 1.014x, causal 512 keys and
  // one-tile items 1.028x, d64 16k 0.994x.
  if (tid == 0) init_ws_barriers<T>(ring);
  __syncthreads();
  if (tid == 0) {
    timeline_mark_at(p, kTlStart, t_start);
    timeline_mark(p, kTlSm);
    timeline_mark(p, kTlBarriers);
  }
  WorkTile w;

  if (wg == 0) {  // producer
    tma::release_registers<T::kProducerRegs>();
    if (tid == 0) {
      timeline_mark(p, kTlProducerReady);
      if (!resolve_work<T::kBlockM>(p, w)) return;  // a virtual varlen tile past its sequence
      timeline_mark(p, kTlResolved);
      prefetch_ws_maps(&tq, &tk, &tv);
      timeline_mark(p, kTlMapsFetched);
      load_q_ws<T, kPatched>(ring, &tq, p, w);  // Q needs the item only, not its key tiles
      timeline_mark(p, kTlQIssued);
      const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
      const int32_t kv_head = w.head / p.group;
      for (int32_t n = 0; n < tiles.count; ++n) {
        produce_kv_ws<T, kPatched>(ring, n, &tk, &tv, p, w, kv_head, tiles, n);
      }
      // The next CTA's first tiles into L2 once this item's copies are issued, about kStages
      // tiles before this CTA ends: early enough to hide device memory's latency, and late
      // enough that the lines are still in L2 when that CTA reads them. Issued at the ring's
      // first fill, HBM-bound items lost them first and paid the traffic twice (items k1024
      // 0.91x, gpu-ab call 50; here 1.01x and the window 1.04x, call 53).
      prefetch_next_cta_ws<T, kPatched>(&tq, &tk, &tv, p);
      timeline_mark(p, kTlKvIssued);
      timeline_mark(p, kTlTiles, tiles.count);
      timeline_tally(p, ring, 2);
    }
    timeline_exit(p);
    return;
  }

  // Before the consumers' setmaxnreg: after it, ptxas reloaded a spilled value at the top of
  // every d64 key tile.
  if (!resolve_work<T::kBlockM>(p, w)) return;  // the same answer for every consumer thread
  const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
  tma::claim_registers<T::kConsumerRegs>();
  const WsConsumer c(tid);
  const float sl2 = p.transform ? 1.0f : p.scale_log2;
  float o[1][T::kDTiles][4];
  zero_o<T>(o);
  OnlineSoftmax<T> softmax;
  tma::wait(ring.q_full(), 0);
  const bool marks = (c.ctid & 127) == 0;  // one thread per consumer warpgroup
  if (marks) timeline_mark(p, kTlQLanded0 + 3 * c.cw);
  bool partial = false;
  consume<T>(p, w, tiles, ring, 0, c, sl2, o, softmax, partial);
  recompute_nonfinite<T, kPatched>(partial, o, softmax, p, w, tiles, ring, c, sl2, smem_raw, &tk,
                                   &tv);
  if (marks) timeline_mark(p, kTlLoopEnd0 + 3 * c.cw);
  write_output_ws<T, kPatched>(o, softmax, p, w, sl2, c, ring.q(), &to);
  if ((c.ctid & 127) < 32) timeline_consumer_end(p, ring, c.cw, c.lane);
  timeline_exit(p);
#else
  __trap();  // built without sm_90a code for this device: the dispatcher never launches it
#endif
}

}  // namespace polyhead::cuda
