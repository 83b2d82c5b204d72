// The Hopper forward kernel (sm_90a): FlashAttention-2's algorithm on the warpgroup tensor-core
// instructions, in a persistent grid. CTAs of two warpgroups (one per SM, two at Dqk = 64 and
// 128) walk a static list of work items (sequence, query head, query tile of 64 rows per
// warpgroup; warpgroup g owns rows [64 g, 64 g + 64)). The Q tile stays in shared memory; K
// and V tiles are double-buffered, so the load of key tile n + 1 runs during all of iteration
// n (the first tile's V has its own group, so S = Q K[0]^T does not wait for it):
//
//   wait tile n, barrier | issue S = Q K[n]^T (wgmma SS) | issue loads K, V [n + 1] | wait S |
//   transform, mask, online softmax (registers) | O += P V[n] (wgmma RS, P from registers)
//
// Issuing the loads after S lets the tensor cores start while the copies are issued (d128
// dense 16k: 454.6 TFLOP/s, against 435.9 before, in separate runs). No tile tests its V for
// Inf/NaN on the way: an item with partial tiles whose O ends non-finite is computed again
// (recompute_exact). In one A/B run at 4bb5670 that against the test on each partial tile's
// barrier measured window 1024 321.9 against 294.0 TFLOP/s, NA-2D 66.8 against 57.3, dense
// d256 16k 534.2 against 456.3 (bench/results/gpu-ab_NVIDIA-H200_2026-11-28_call1.md).
//
// The key-tile pipeline runs across work items: the last iteration of an item issues the next
// item's first K, V (and Q, into the second Q buffer where two fit), so the next item's
// loads overlap this item's last products and its epilogue. At short sequences, where an
// item has a few key tiles, that is what the persistent grid gains over one CTA per item (d128
// dense at 512 tokens: 311 against 280 TFLOP/s in the same build, `cuda_fwd_bench --ctas -1`).
//
// The warpgroups meet only at the barrier, so one's softmax overlaps the other's products.
// Scores, masks, softmax and the epilogue are the mma.sync kernel's (fwd/): the wgmma
// accumulator of a warp is laid out as its m16n8 tiles, so they run unchanged with
// kMTiles = 1. Every feature of FwdParams is supported.
#pragma once

#include <cstdint>

#include "cuda/fwd/epilogue.cuh"
#include "cuda/fwd/exact_pv.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/mainloop.cuh"

namespace polyhead::cuda {

// A work item with its key tiles and tensor origins: q at the item's first query row (at the
// sequence's first row in patch order, whose rows are not consecutive), k and v at the
// sequence's first key.
template <typename T, bool kPatched, bool kSplit>
struct Sm90Item {
  WorkTile w;
  KeyTiles<T::kBlockM, T::kBlockN> tiles;
  const typename T::Elem *q, *k, *v;

  // Resolves the first item at or after schedule position `round` that has work; advances
  // `round` past it. False when the schedule is exhausted.
  __device__ __forceinline__ bool advance(const FwdParams& p, const PersistentSchedule& s,
                                          int32_t& round) {
    for (;;) {
      const uint32_t x = s.item(round);
      if (x >= uint32_t(s.items)) return false;  // item(round) grows with round
      ++round;
      if (!resolve_item<T::kBlockM, kSplit>(p, int32_t(x), w)) continue;
      tiles = KeyTiles<T::kBlockM, T::kBlockN>(p, w);
      if constexpr (kSplit) tiles.keep_share(w.split, p.kv_splits);
      const TileOrigins<typename T::Elem> g(p, w, kPatched ? 0 : w.q_tile * T::kBlockM);
      q = g.q;
      k = g.k;
      v = g.v;
      return true;
    }
  }
};

// Key tile kt of K or V (kCols columns) of the sequence starting at `seq`: consecutive rows,
// or in patch order.
template <typename T, bool kPatched, int kCols>
__device__ __forceinline__ void load_key_tile(uint32_t dst, const typename T::Elem* seq,
                                              int64_t row_stride, const TokenOrder& order,
                                              int32_t seqlen_k, int32_t kt, int tid) {
  if constexpr (kPatched) {
    load_tile_sw128_ordered<T::kBlockN, kCols, T::kThreads>(dst, seq, row_stride, order,
                                                            kt * T::kBlockN, tid);
  } else {
    load_tile_sw128<T::kBlockN, kCols, T::kThreads>(dst,
                                                    seq + int64_t(kt) * T::kBlockN * row_stride,
                                                    row_stride, seqlen_k - kt * T::kBlockN, tid);
  }
}

// Key tile kt of K and V into stage buffers sk and sv.
template <typename T, bool kPatched>
__device__ __forceinline__ void load_kv_tile(uint32_t sk, uint32_t sv, const typename T::Elem* k,
                                             const typename T::Elem* v, const FwdParams& p,
                                             int32_t seqlen_k, int32_t kt, int tid) {
  if constexpr (kPatched && T::kHeadDimQK == T::kHeadDimV) {
    load_kv_sw128_ordered<T::kBlockN, T::kHeadDimV, T::kThreads>(
        sk, sv, k, v, p.k_row_stride, p.v_row_stride, p.order, kt * T::kBlockN, tid);
  } else {
    load_key_tile<T, kPatched, T::kHeadDimQK>(sk, k, p.k_row_stride, p.order, seqlen_k, kt, tid);
    load_key_tile<T, kPatched, T::kHeadDimV>(sv, v, p.v_row_stride, p.order, seqlen_k, kt, tid);
  }
}

// The item again, one key tile at a time through shared-memory stage `rs`, with the Inf/NaN
// test on each partial tile and the exact path where it finds one. Q is still in `sq` (the next
// item's prefetch, if any, took the other Q buffer and the other stage). Rare and slow.
template <typename T, bool kPatched, bool kSplit>
__device__ __forceinline__ void recompute_exact(float (&o)[1][T::kDTiles][4],
                                                OnlineSoftmax<T>& softmax, const FwdParams& p,
                                                const Sm90Item<T, kPatched, kSplit>& cur, int rs,
                                                uint32_t sq, uint32_t base, unsigned char* smem,
                                                int tid, float sl2) {
  using Elem = typename T::Elem;
  const int lane = tid & 31, warp = tid >> 5, wg = warp >> 2, warp_row0 = warp * 16;
  const uint32_t sk = base + T::kOffK + uint32_t(rs) * T::kBytesK;
  const uint32_t sv = base + T::kOffV + uint32_t(rs) * T::kBytesV;
  const Elem* v_tile = reinterpret_cast<const Elem*>(smem + T::kOffV + rs * T::kBytesV);
  ptx::cp_async_wait<0>();  // the next item's prefetch, if any, lands first
  __syncthreads();
  zero_o<T>(o);
  softmax = OnlineSoftmax<T>();
  for (int32_t n = 0; n < cur.tiles.count; ++n) {
    const KeyTileRef t = cur.tiles[n];
    load_kv_tile<T, kPatched>(sk, sv, cur.k, cur.v, p, cur.w.seqlen_k, t.index, tid);
    ptx::cp_async_commit();
    ptx::cp_async_wait<0>();
    sm90::fence_proxy_async();
    const bool exact = __syncthreads_or(
        t.slot != -1 && v_tile_nonfinite<T>(reinterpret_cast<const uint16_t*>(v_tile), tid));
    float s[1][T::kNTiles][4];
    issue_qk_sm90<T>(s, sq, sk, wg);
    wait_qk_sm90<T>(s);
    if (p.transform) transform_scores<T>(s, p, cur.w, t.index * T::kBlockN, warp_row0, lane);
    if (t.slot != -1) mask_scores<T>(s, p, cur.w, t, warp_row0, lane);
    softmax.update(s, o, sl2);
    if (!exact) {
      gemm_pv_sm90<T>(o, s, sv);
    } else {
      exact_pv<T>(o, s, p, cur.w, t, reinterpret_cast<Elem*>(smem + T::kOffP), v_tile, warp_row0,
                  lane);
    }
    __syncthreads();  // every warp is done with stage rs before the next tile's loads
  }
}

// kPatched: the problem runs in patch order (p.order, token_order.h); kSplit: split-KV
// (p.kv_splits > 1, params.h), whose epilogue writes each share's fp32 O and log-sum-exp.
// Separate instances, so the plain kernel carries none of their code (with the split epilogue
// inlined beside the plain one, d64 dense at 512 tokens ran at 300.2 against 311.5 TFLOP/s).
template <typename T, bool kPatched, bool kSplit>
__global__ void __launch_bounds__(T::kThreads, T::kMinBlocksPerSm)
    fwd_sm90_kernel(const __grid_constant__ FwdParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename T::Elem;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const PersistentSchedule sched{p.work_items, int32_t(gridDim.x), int32_t(blockIdx.x)};
  int32_t round = 0;
  Sm90Item<T, kPatched, kSplit> cur;
  if (!cur.advance(p, sched, round)) return;

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int warp_row0 = warp * 16;
  const uint32_t raw = ptx::smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;  // swizzle atoms are 1024-byte aligned
  unsigned char* smem = smem_raw + (base - raw);
  const uint32_t sk = base + T::kOffK, sv = base + T::kOffV;
  const float sl2 = p.transform ? 1.0f : p.scale_log2;

  // Tiles of rows [pos0, pos0 + rows) of a sequence: consecutive rows, or in patch order
  // (token_order.h) when the dispatcher chose it.
  auto load_q = [&](const Sm90Item<T, kPatched, kSplit>& it, int qstage) {
    const uint32_t dst = base + uint32_t(qstage) * T::kBytesQ;
    if constexpr (kPatched) {
      load_tile_sw128_ordered<T::kBlockM, T::kHeadDimQK, T::kThreads>(
          dst, it.q, p.q_row_stride, p.order, it.w.q_tile * T::kBlockM, tid);
    } else {
      // it.q is the tile's first row here (Sm90Item)
      load_tile_sw128<T::kBlockM, T::kHeadDimQK, T::kThreads>(
          dst, it.q, p.q_row_stride, it.w.seqlen_q - it.w.q_tile * T::kBlockM, tid);
    }
  };
  auto load_k = [&](const Sm90Item<T, kPatched, kSplit>& it, int32_t kt, int stage) {
    load_key_tile<T, kPatched, T::kHeadDimQK>(sk + uint32_t(stage) * T::kBytesK, it.k,
                                              p.k_row_stride, p.order, it.w.seqlen_k, kt, tid);
  };
  auto load_v = [&](const Sm90Item<T, kPatched, kSplit>& it, int32_t kt, int stage) {
    load_key_tile<T, kPatched, T::kHeadDimV>(sv + uint32_t(stage) * T::kBytesV, it.v,
                                             p.v_row_stride, p.order, it.w.seqlen_k, kt, tid);
  };
  auto load_kv = [&](const Sm90Item<T, kPatched, kSplit>& it, int32_t kt, int stage) {
    load_kv_tile<T, kPatched>(sk + uint32_t(stage) * T::kBytesK, sv + uint32_t(stage) * T::kBytesV,
                              it.k, it.v, p, it.w.seqlen_k, kt, tid);
  };
  // Issues (does not commit) the next item's Q and first K, V; false when there is none.
  auto prefetch_next = [&](int qstage, int stage) {
    int32_t r = round;
    Sm90Item<T, kPatched, kSplit> nx;
    if (!nx.advance(p, sched, r) || nx.tiles.count == 0) return false;
    load_q(nx, qstage);
    load_kv(nx, nx.tiles[0].index, stage);
    return true;
  };

  int qs = 0, stage = 0;
  bool loaded = false;  // this item's Q and first K, V are in flight (prefetched)
  for (;;) {
    const int32_t count = cur.tiles.count;
    const bool split = !loaded;  // Q, K[0] and V[0] as two groups, waited for separately
    if (split && count > 0) {
      load_q(cur, qs);
      load_k(cur, cur.tiles[0].index, stage);
      ptx::cp_async_commit();
      load_v(cur, cur.tiles[0].index, stage);
      ptx::cp_async_commit();
    }
    const uint32_t sq = base + uint32_t(qs) * T::kBytesQ;
    const int nq = T::kQStages == 2 ? qs ^ 1 : qs;  // Q buffer of the next item
    bool next_loaded = false;

    float o[1][T::kDTiles][4];
    zero_o<T>(o);
    OnlineSoftmax<T> softmax;
    KeyTileRef tile{};
    if (count > 0) tile = cur.tiles[0];

    // Every tile goes to the tensor cores. A partial tile whose V holds Inf/NaN would put
    // 0 * Inf = NaN into rows that cannot see that key, so an item with partial tiles whose O
    // ends non-finite is computed again below, testing each partial tile's V and taking the
    // exact path (exact_pv.cuh) where it must. The test is then paid once per item instead of
    // on every partial tile (window 1024 without any test: 337.7 against 302.5 TFLOP/s).
    bool partial = false;
    for (int32_t n = 0; n < count; ++n) {
      partial |= tile.slot != -1;
      if (split && n == 0) {
        ptx::cp_async_wait<1>();  // Q and K[0]
      } else {
        ptx::cp_async_wait<0>();
      }
      sm90::fence_proxy_async();  // cp.async wrote through the generic proxy; wgmma reads async
      __syncthreads();            // tile n (and Q) landed; every warp is done with the other stage
      // S = Q K[n]^T goes to the tensor cores first; the next loads are issued while it runs.
      float s[1][T::kNTiles][4];
      issue_qk_sm90<T>(s, sq, sk + uint32_t(stage) * T::kBytesK, wg);
      KeyTileRef next{};
      if (n + 1 < count) {
        next = cur.tiles[n + 1];
        load_kv(cur, next.index, stage ^ 1);
      } else if (T::kQStages == 2) {
        // The other Q buffer was last read by the previous item, before this barrier.
        next_loaded = prefetch_next(nq, stage ^ 1);
      }
      ptx::cp_async_commit();  // possibly empty: the wait counts below count groups
      wait_qk_sm90<T>(s);
      if (p.transform) transform_scores<T>(s, p, cur.w, tile.index * T::kBlockN, warp_row0, lane);
      if (tile.slot != -1) mask_scores<T>(s, p, cur.w, tile, warp_row0, lane);

      softmax.update(s, o, sl2);

      if (split && n == 0) {
        ptx::cp_async_wait<1>();  // V[0] too (the group committed last may still fly)
        sm90::fence_proxy_async();
        __syncthreads();
      }
      gemm_pv_sm90<T>(o, s, sv + uint32_t(stage) * T::kBytesV);
      tile = next;
      stage ^= 1;
    }
    // A sum propagates Inf and NaN (a finite O whose sum overflows only costs a recomputation
    // with the same result).
    if (partial && __syncthreads_or(!isfinite(o_sum<T>(o)))) {
      recompute_exact<T, kPatched, kSplit>(o, softmax, p, cur, next_loaded ? stage ^ 1 : stage, sq,
                                           base, smem, tid, sl2);
    }
    if (!next_loaded) {
      // One Q buffer (or an item without key tiles): the next item's loads start once every
      // warp is past this item's products, and overlap its epilogue.
      __syncthreads();
      next_loaded = prefetch_next(nq, stage);
      ptx::cp_async_commit();
    }
    if constexpr (kSplit) {
      write_split<T, kPatched>(o, softmax, p, cur.w, sl2, warp_row0, lane);
    } else {
      write_output<T, kPatched>(o, softmax, p, cur.w, sl2, warp_row0, lane);
    }
    if (!cur.advance(p, sched, round)) break;
    loaded = next_loaded;
    if (loaded) qs = nq;
  }
  ptx::cp_async_wait<0>();  // nothing may still be landing in shared memory at exit
#else
  __trap();  // built without sm_90a code for this device: the dispatcher never launches it
#endif
}

}  // namespace polyhead::cuda
