// The consumer warpgroups' main loops of the warp-specialized kernel (fwd_ws/kernel.cuh): the
// shared-memory ring they read, and two schedules of the tensor-core work, picked per tile
// shape (FwdWsTile::kOverlap, tile_size.h, with the measured reasons):
//   consume_serial: per key tile S = Q K^T, wait, softmax, O += P V, wait;
//   consume_overlapped: S of tile n is issued together with O += P V of tile n - 1, so the
//     softmax of tile n runs while that product does (FlashAttention-3's intra-warpgroup
//     overlap); with kPingPong the two consumers also take turns at issuing (named barriers 2
//     and 3), so one's softmax runs while the other's products do.
#pragma once

#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/timeline.h"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/mainloop.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

// Addresses of the shared-memory layout (FwdWsTraits): Q, the stages (K then V), mbarriers.
// Key tiles pass through the ring in one sequence over all of a CTA's items (the persistent
// kernel); tile g of it sits in stage slot(g) and completes that stage's barriers' phase of
// parity parity(g).
template <typename T>
struct WsRing {
  uint32_t base;
  __device__ __forceinline__ explicit WsRing(uint32_t raw) : base((raw + 1023u) & ~1023u) {}
  __device__ __forceinline__ uint32_t q() const { return base; }
  __device__ __forceinline__ uint32_t k(int s) const {
    return base + T::kOffStages + uint32_t(s) * T::kBytesStage;
  }
  __device__ __forceinline__ uint32_t v(int s) const { return k(s) + T::kBytesK; }
  __device__ __forceinline__ uint32_t bar(int i) const { return base + T::kOffBar + 8u * i; }
  // q_full, k_full[kStages], v_full[kStages], empty[kStages], redo (warpgroup 0), q_empty,
  // redo (warpgroup 1)
  __device__ __forceinline__ uint32_t q_full() const { return bar(0); }
  __device__ __forceinline__ uint32_t k_full(int s) const { return bar(1 + s); }
  __device__ __forceinline__ uint32_t v_full(int s) const { return bar(1 + T::kStages + s); }
  __device__ __forceinline__ uint32_t empty(int s) const { return bar(1 + 2 * T::kStages + s); }
  // The recomputation's copies of consumer warpgroup cw (kernel.cuh).
  __device__ __forceinline__ uint32_t redo(int cw = 0) const {
    return bar(cw == 0 ? 1 + 3 * T::kStages : 3 + 3 * T::kStages);
  }
  __device__ __forceinline__ uint32_t q_empty() const { return bar(2 + 3 * T::kStages); }
  // Timeline builds: wait count i (kTlKvWait0 + i) of timeline.h.
  __device__ __forceinline__ uint32_t tally(int i) const { return bar(4 + 3 * T::kStages + i); }
  __device__ __forceinline__ static int slot(int32_t g) { return g % T::kStages; }
  __device__ __forceinline__ static uint32_t parity(int32_t g) {
    return uint32_t((g / T::kStages) & 1);
  }
};

// tma::wait on a ring barrier; in timeline builds, thread `tally >= 0`'s cycles in it add to
// wait count `tally` (timeline.h: kTlKvWait0 + tally) of the ring's tally words (WsRing, or any
// ring with tally(i)). Elsewhere exactly tma::wait.
template <typename Ring>
__device__ __forceinline__ void ring_wait(const Ring& ring, uint32_t bar, uint32_t parity,
                                          [[maybe_unused]] int tally) {
#if POLYHEAD_CUDA_TIMELINE
  const long long t0 = clock64();
  tma::wait(bar, parity);
  if (tally >= 0) {
    const uint32_t at = ring.tally(tally);
    ptx::st_shared_u64(at, ptx::ld_shared_u64(at) + uint64_t(clock64() - t0));
  }
#else
  tma::wait(bar, parity);
#endif
}

// Timeline builds: the phase counts of one consumer warpgroup's main loop (timeline.h,
// kTlPhase0), kept by the thread that keeps its wait count (`tally` >= 0, its warpgroup).
// start() sets the clock; lap(k) adds the cycles since to phase k and sets it again. Elsewhere
// nothing. `Ring`: a ring with tally words (WsRing<T>).
template <typename Ring>
struct PhaseClock {
#if POLYHEAD_CUDA_TIMELINE
  const Ring& ring;
  int tally;
  long long t = 0;
  __device__ __forceinline__ PhaseClock(const Ring& r, int tl) : ring(r), tally(tl) {}
  __device__ __forceinline__ void start() {
    t = clock64();
  }
  __device__ __forceinline__ void lap(int k) {
    const long long now = clock64();
    if (tally >= 0) {
      const uint32_t at = ring.tally(phase_tally(tally, k));
      ptx::st_shared_u64(at, ptx::ld_shared_u64(at) + uint64_t(now - t));
    }
    t = now;
  }
#else
  __device__ __forceinline__ PhaseClock(const Ring&, int) {}
  __device__ __forceinline__ void start() {}
  __device__ __forceinline__ void lap(int) {}
#endif
};

// A consumer thread's place: its index among the consumer threads, its warpgroup (rows
// [64 cw, 64 cw + 64) of the tile), its lane, and its warp's first row.
// The warpgroup cw is broadcast from lane 0: ptxas then keeps what derives from it (the Q
// operand's wgmma descriptors, the turn barriers) on the uniform datapath (gpu-ab call 55: d64
// +1.8-1.9%; hot paths d128 513 -> 497 instructions).
struct WsConsumer {
  int ctid, cw, lane, warp_row0;
  __device__ __forceinline__ explicit WsConsumer(int tid)
      : ctid(tid - 128),
        cw(__shfl_sync(0xffffffffu, ctid / 128, 0)),
        lane(ctid & 31),
        warp_row0((ctid >> 5) * 16) {}
};

// The consumers' turns at the tensor cores: warpgroup c waits on named barrier 2 + c for the
// other warpgroup's 128 arrivals (and its own 128 threads).
__device__ __forceinline__ void turn_wait(uint32_t id) {
  asm volatile("bar.sync %0, 256;" ::"r"(id) : "memory");
}
__device__ __forceinline__ void turn_open(uint32_t id) {
  asm volatile("bar.arrive %0, 256;" ::"r"(id) : "memory");
}

// A partial tile's mask; a window tile's from its rows' bounds computed once per item (`win`),
// or with none (the recomputation) from the window rule per tile.
template <typename T>
__device__ __forceinline__ void ws_mask(float (&sc)[1][T::kNTiles][4], const FwdParams& p,
                                        const WorkTile& w, KeyTileRef tile, const RowWindow<1>* win,
                                        int warp_row0, int lane) {
  if (tile.slot == -1) return;
  if (win != nullptr) {
    mask_scores<T>(sc, p, w, tile, *win, warp_row0, lane);
  } else {
    mask_scores<T>(sc, p, w, tile, warp_row0, lane);
  }
}

// Scores of key tile `tile` into log2-unit logits with its mask applied.
template <typename T>
__device__ __forceinline__ void ws_scores(float (&sc)[1][T::kNTiles][4], const FwdParams& p,
                                          const WorkTile& w, KeyTileRef tile,
                                          const RowWindow<1>* win, int warp_row0, int lane) {
  if (p.transform) transform_scores<T>(sc, p, w, tile.index * T::kBlockN, warp_row0, lane);
  ws_mask<T>(sc, p, w, tile, win, warp_row0, lane);
}

// A block-map tile's rules for a consumer thread's two rows, r and r + 8.
template <typename T>
using TileBits = RowRule<T::kBlockN>[2];

// Block-map bits one key tile ahead (FwdWsTraits::kPrefetchBits). A partial block-map tile's
// rule is bits in global memory (work.cuh, row_rule); loaded when the tile's scores are, after
// S = Q K^T, every tile waits for an L2 round trip. Here the loads of tile n + 1's bits (for the
// thread's two rows) and tile n + 2's entry are issued while tile n is consumed, each from a
// value loaded one tile earlier, so no load is waited for in the loop.
template <typename T>
struct BitsAhead {
  KeyTileRef ref1, ref2;   // tiles n + 1 and n + 2
  TileBits<T> bits1 = {};  // tile n + 1's

  BitsAhead() = default;
  __device__ __forceinline__ void load(const FwdParams& p, const WsConsumer& c) {
    if (ref1.slot < 0 || p.mask_mode != FwdMaskMode::kBlockMap) return;
#pragma unroll
    for (int h = 0; h < 2; ++h) {  // row_rule's block-map case, which reads neither i nor w
      bits1[h] = row_rule<T::kBlockM, T::kBlockN>(p, ref1, c.warp_row0 + (c.lane >> 2) + 8 * h, 0,
                                                  WorkTile{});
    }
  }
  __device__ __forceinline__ BitsAhead(const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                       const FwdParams& p, const WsConsumer& c) {
    if (tiles.count > 0) ref1 = tiles[0];
    load(p, c);
    if (tiles.count > 1) ref2 = tiles[1];
  }
  // Tile n and its bits; starts the loads for tiles n + 1 and n + 2.
  __device__ __forceinline__ KeyTileRef next(const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                             int32_t n, const FwdParams& p, const WsConsumer& c,
                                             TileBits<T>& bits) {
    const KeyTileRef t = ref1;
    bits[0] = bits1[0], bits[1] = bits1[1];
    ref1 = ref2;
    if (n + 1 < tiles.count) load(p, c);
    if (n + 2 < tiles.count) ref2 = tiles[n + 2];
    return t;
  }
};

// ws_scores with a block-map tile's bits already loaded (BitsAhead).
template <typename T>
__device__ __forceinline__ void ws_scores_bits(float (&sc)[1][T::kNTiles][4], const FwdParams& p,
                                               const WorkTile& w, KeyTileRef tile,
                                               const TileBits<T>& bits, const RowWindow<1>& win,
                                               int warp_row0, int lane) {
  if (p.transform) transform_scores<T>(sc, p, w, tile.index * T::kBlockN, warp_row0, lane);
  if (tile.slot >= 0 && p.mask_mode == FwdMaskMode::kBlockMap) {
#pragma unroll
    for (int h = 0; h < 2; ++h) mask_row<T>(sc[0], h, bits[h], lane);
  } else {
    ws_mask<T>(sc, p, w, tile, &win, warp_row0, lane);
  }
}

// The scores of tile `tile` with its mask, from the bits BitsAhead loaded where the tile shape
// has them (kPrefetchBits).
template <typename T>
__device__ __forceinline__ void ws_tile_scores(float (&sc)[1][T::kNTiles][4], const FwdParams& p,
                                               const WorkTile& w, KeyTileRef tile,
                                               const TileBits<T>& bits, const RowWindow<1>& win,
                                               int warp_row0, int lane) {
  if constexpr (T::kPrefetchBits) {
    ws_scores_bits<T>(sc, p, w, tile, bits, win, warp_row0, lane);
  } else {
    ws_scores<T>(sc, p, w, tile, &win, warp_row0, lane);
  }
}

template <typename T>
__device__ __forceinline__ void consume_serial(const FwdParams& p, const WorkTile& w,
                                               const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                               const WsRing<T>& ring, int32_t g0,
                                               const WsConsumer& c, float sl2,
                                               float (&o)[1][T::kDTiles][4],
                                               OnlineSoftmax<T>& softmax, bool& partial) {
  const int tally = (c.ctid & 127) == 0 ? c.cw : -1;  // timeline builds: ring_wait
  const auto win = row_window<T::kBlockM, 1>(p, w, c.warp_row0 + (c.lane >> 2));
  for (int32_t n = 0; n < tiles.count; ++n) {
    const int s = ring.slot(g0 + n);
    const KeyTileRef tile = tiles[n];
    partial |= tile.slot != -1;
    ring_wait(ring, ring.k_full(s), ring.parity(g0 + n), tally);
    float sc[1][T::kNTiles][4];
    issue_qk_sm90<T>(sc, ring.q(), ring.k(s), c.cw);
    wait_qk_sm90<T>(sc);
    ws_scores<T>(sc, p, w, tile, &win, c.warp_row0, c.lane);
    softmax.update(sc, o, sl2);
    ring_wait(ring, ring.v_full(s), ring.parity(g0 + n), tally);
    gemm_pv_sm90<T>(o, sc, ring.v(s));  // waits for its products
    tma::arrive(ring.empty(s));
  }
}

template <typename T>
__device__ __forceinline__ void consume_overlapped(const FwdParams& p, const WorkTile& w,
                                                   const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                                   const WsRing<T>& ring, int32_t g0,
                                                   const WsConsumer& c, float sl2,
                                                   float (&o)[1][T::kDTiles][4],
                                                   OnlineSoftmax<T>& softmax, bool& partial) {
  constexpr bool kPrefetch = T::kPrefetchBits;
  const int32_t count = tiles.count;
  if (count == 0) return;
  const int tally = (c.ctid & 127) == 0 ? c.cw : -1;  // timeline builds: ring_wait
  [[maybe_unused]] PhaseClock<WsRing<T>> clock(ring, tally);
  // Ping-pong: each turn ends by opening the other's next one; consumer 1 opens consumer 0's
  // first, and consumer 0 takes the one turn left open at the end.
  const uint32_t my_turn = 2u + uint32_t(c.cw), other_turn = 3u - uint32_t(c.cw);
  if (T::kPingPong && c.cw == 1) turn_open(2u);
  uint32_t pa[T::kBlockN / 16][4];  // P of the previous tile, in flight with its P V product
  [[maybe_unused]] BitsAhead<T> ahead = kPrefetch ? BitsAhead<T>(tiles, p, c) : BitsAhead<T>();
  TileBits<T> bits;  // kPrefetch: the tile's block-map rules
  const auto win = row_window<T::kBlockM, 1>(p, w, c.warp_row0 + (c.lane >> 2));
  {
    const KeyTileRef tile = kPrefetch ? ahead.next(tiles, 0, p, c, bits) : tiles[0];
    partial = tile.slot != -1;
    ring_wait(ring, ring.k_full(ring.slot(g0)), ring.parity(g0), tally);
    float sc[1][T::kNTiles][4];
    if (T::kPingPong) turn_wait(my_turn);
    issue_qk_sm90<T>(sc, ring.q(), ring.k(ring.slot(g0)), c.cw);
    if (T::kPingPong) turn_open(other_turn);
    wait_qk_sm90<T>(sc);
    ws_tile_scores<T>(sc, p, w, tile, bits, win, c.warp_row0, c.lane);
    float alpha[1][2];
    (void)softmax.update_deferred(sc, sl2, alpha);  // O is still zero
    pack_p_sm90<T>(pa, sc);
  }
  for (int32_t n = 1; n < count; ++n) {
    clock.start();
    const int s = ring.slot(g0 + n), prev = ring.slot(g0 + n - 1);
    const KeyTileRef tile = kPrefetch ? ahead.next(tiles, n, p, c, bits) : tiles[n];
    partial |= tile.slot != -1;
    clock.lap(kPhTop);
    // Both waits before the products: a wait may leave the kernel (tma::wait), and ptxas
    // would then stop for the products in flight before it.
    ring_wait(ring, ring.v_full(prev), ring.parity(g0 + n - 1), tally);
    ring_wait(ring, ring.k_full(s), ring.parity(g0 + n), tally);
    float sc[1][T::kNTiles][4];
    clock.start();
    if (T::kPingPong) turn_wait(my_turn);
    clock.lap(kPhTurn);
    issue_qk_sm90<T>(sc, ring.q(), ring.k(s), c.cw);
    issue_pv_sm90<T>(o, pa, ring.v(prev));
    if (T::kPingPong) turn_open(other_turn);
    clock.lap(kPhIssue);
    sm90::wait<1>();  // S of tile n; the P V product may still run
    sm90::fence_operands(sc[0]);
    clock.lap(kPhSWait);
    ws_tile_scores<T>(sc, p, w, tile, bits, win, c.warp_row0, c.lane);
    clock.lap(kPhMask);
    float alpha[1][2];
    const bool moved = softmax.update_deferred(sc, sl2, alpha);
    clock.lap(kPhSoftmax);
    sm90::wait<0>();
    clock.lap(kPhPvWait);
    settle_pv_sm90<T>(o, pa);
    tma::arrive(ring.empty(prev));
    if (moved) OnlineSoftmax<T>::rescale(o, alpha);
    pack_p_sm90<T>(pa, sc);
    clock.lap(kPhPost);
  }
  const int last = ring.slot(g0 + count - 1);
  ring_wait(ring, ring.v_full(last), ring.parity(g0 + count - 1), tally);
  issue_pv_sm90<T>(o, pa, ring.v(last));
  sm90::wait<0>();
  settle_pv_sm90<T>(o, pa);
  tma::arrive(ring.empty(last));
  if (T::kPingPong && c.cw == 0) turn_wait(my_turn);  // consumer 1's last opening
}

// The item's tiles with the tile shape's schedule (FwdWsTile::kOverlap).
template <typename T>
__device__ __forceinline__ void consume(const FwdParams& p, const WorkTile& w,
                                        const KeyTiles<T::kBlockM, T::kBlockN>& tiles,
                                        const WsRing<T>& ring, int32_t g0, const WsConsumer& c,
                                        float sl2, float (&o)[1][T::kDTiles][4],
                                        OnlineSoftmax<T>& softmax, bool& partial) {
  if constexpr (T::kOverlap) {
    consume_overlapped<T>(p, w, tiles, ring, g0, c, sl2, o, softmax, partial);
  } else {
    consume_serial<T>(p, w, tiles, ring, g0, c, sl2, o, softmax, partial);
  }
}

}  // namespace polyhead::cuda
