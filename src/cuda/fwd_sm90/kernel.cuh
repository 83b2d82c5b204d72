// The Hopper forward kernel (sm_90a): FlashAttention-2's algorithm on the warpgroup tensor-core
// instructions, in a persistent grid. One CTA of two warpgroups (three at Dqk = 64) per SM
// walks a static list of work items (sequence, query head, query tile of 64 rows per
// warpgroup; warpgroup g owns rows [64 g, 64 g + 64)). The Q tile stays in shared memory; K
// and V tiles are double-buffered, K one tile ahead of V, and each warpgroup overlaps its
// softmax with its own P V product (FlashAttention-3's intra-warpgroup pipelining):
//
//   wait V[n], K[n + 1], barrier | issue loads K[n + 2], V[n + 1] | issue S[n + 1] = Q K[n + 1]^T
//   and O += P[n] V[n] (two wgmma groups) | wait S[n + 1] | transform, mask, softmax of
//   S[n + 1] (while P V runs) | wait P V | rescale O, P[n + 1] = S[n + 1] rounded
//
// so the tensor cores have P V to work on while the warpgroup's exponentials run, instead of
// idling from S's completion to the next product. A partial tile whose V holds Inf/NaN takes
// the exact path (exact_pv.cuh) instead of the P V product.
//
// The key-tile pipeline runs across work items: the last iteration of an item (after its last S
// product, so Q's buffer is free) issues the next item's Q, K[0], K[1] and V[0], so those loads
// overlap this item's last P V and its epilogue. At short sequences, where an item has a few key
// tiles, that is what the persistent grid gains over one CTA per item (d128 dense at 512
// tokens: 311 against 280 TFLOP/s in the same build before the overlap, `cuda_fwd_bench --ctas
// -1`).
//
// The warpgroups meet only at the per-tile barrier. Scores, masks, softmax and the epilogue are
// the mma.sync kernel's (fwd/): the wgmma accumulator of a warp is laid out as its m16n8 tiles,
// so they run unchanged with kMTiles = 1. Every feature of FwdParams is supported.
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
template <typename T, bool kPatched>
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
      if (!resolve_item<T::kBlockM>(p, int32_t(x), w)) continue;
      tiles = KeyTiles<T::kBlockM, T::kBlockN>(p, w);
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

// kPatched: the problem runs in patch order (p.order, token_order.h); a separate instance, so
// the plain kernel carries none of its code.
template <typename T, bool kPatched>
__global__ void __launch_bounds__(T::kThreads, 1)
    fwd_sm90_kernel(const __grid_constant__ FwdParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename T::Elem;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const PersistentSchedule sched{p.work_items, int32_t(gridDim.x), int32_t(blockIdx.x)};
  int32_t round = 0;
  Sm90Item<T, kPatched> cur;
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
  auto load_q = [&](const Sm90Item<T, kPatched>& it) {
    if constexpr (kPatched) {
      load_tile_sw128_ordered<T::kBlockM, T::kHeadDimQK, T::kThreads>(
          base, it.q, p.q_row_stride, p.order, it.w.q_tile * T::kBlockM, tid);
    } else {
      // it.q is the tile's first row here (Sm90Item)
      load_tile_sw128<T::kBlockM, T::kHeadDimQK, T::kThreads>(
          base, it.q, p.q_row_stride, it.w.seqlen_q - it.w.q_tile * T::kBlockM, tid);
    }
  };
  auto load_k = [&](const Sm90Item<T, kPatched>& it, int32_t i, int stage) {
    load_key_tile<T, kPatched, T::kHeadDimQK>(sk + uint32_t(stage) * T::kBytesK, it.k,
                                              p.k_row_stride, p.order, it.w.seqlen_k,
                                              it.tiles[i].index, tid);
  };
  auto load_v = [&](const Sm90Item<T, kPatched>& it, int32_t i, int stage) {
    load_key_tile<T, kPatched, T::kHeadDimV>(sv + uint32_t(stage) * T::kBytesV, it.v,
                                             p.v_row_stride, p.order, it.w.seqlen_k,
                                             it.tiles[i].index, tid);
  };
  // Issues (does not commit) the next item's Q, K[0], K[1] and V[0] into the given stages;
  // false when there is none.
  auto prefetch_next = [&](int kst, int vst) {
    int32_t r = round;
    Sm90Item<T, kPatched> nx;
    if (!nx.advance(p, sched, r) || nx.tiles.count == 0) return false;
    load_q(nx);
    load_k(nx, 0, kst);
    if (nx.tiles.count > 1) load_k(nx, 1, kst ^ 1);
    load_v(nx, 0, vst);
    return true;
  };

  // K[i] of an item sits in stage kst ^ (i & 1), V[i] in vst ^ (i & 1). K runs one tile ahead
  // of V: iteration n multiplies P[n] V[n] while S[n + 1] = Q K[n + 1]^T is in flight.
  int kst = 0, vst = 0;
  bool loaded = false;  // this item's Q, K[0], K[1] and V[0] are in flight (prefetched)
  for (;;) {
    const int32_t count = cur.tiles.count;
    float o[1][T::kDTiles][4];
#pragma unroll
    for (int dt = 0; dt < T::kDTiles; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.0f;
    }
    OnlineSoftmax<T> softmax;
    float s[1][T::kNTiles][4];
    uint32_t pa[T::kBlockN / 16][4];
    bool next_loaded = false;

    if (count > 0) {
      if (!loaded) {
        load_q(cur);
        load_k(cur, 0, kst);
        ptx::cp_async_commit();
        if (count > 1) load_k(cur, 1, kst ^ 1);
        load_v(cur, 0, vst);
        ptx::cp_async_commit();
        ptx::cp_async_wait<1>();  // Q and K[0]
      } else {
        ptx::cp_async_wait<0>();
      }
      sm90::fence_proxy_async();  // cp.async wrote through the generic proxy; wgmma reads async
      __syncthreads();
      const KeyTileRef t0 = cur.tiles[0];
      issue_qk_sm90<T>(s, base, sk + uint32_t(kst) * T::kBytesK, wg);
      wait_pin<0>(s);
      if (p.transform) transform_scores<T>(s, p, cur.w, t0.index * T::kBlockN, warp_row0, lane);
      if (t0.slot != -1) mask_scores<T>(s, p, cur.w, t0, warp_row0, lane);
      softmax.update(s, o, sl2, true);
      pack_p<T>(s, pa);
    }

    for (int32_t n = 0; n < count; ++n) {
      // V[n] and K[n + 1] landed; every warp is done with K[n] and V[n - 1], whose stages the
      // next loads take. After the last S product Q's buffer is free as well.
      ptx::cp_async_wait<0>();
      sm90::fence_proxy_async();
      __syncthreads();
      const int ks = kst ^ (n & 1), vs = vst ^ (n & 1);
      if (n + 2 < count) load_k(cur, n + 2, ks);
      if (n + 1 < count) {
        load_v(cur, n + 1, vs ^ 1);
      } else {
        // K[count] and V[count] would sit in stages ks ^ 1 and vs ^ 1.
        next_loaded = prefetch_next(ks ^ 1, vs ^ 1);
      }
      ptx::cp_async_commit();  // possibly empty

      const KeyTileRef tile = cur.tiles[n];
      const Elem* v_tile = reinterpret_cast<const Elem*>(smem + T::kOffV + vs * T::kBytesV);
      // A partial tile whose values hold Inf/NaN takes the exact path (exact_pv.cuh).
      const bool exact = tile.slot != -1 && __syncthreads_or(v_tile_nonfinite<T>(
                                                reinterpret_cast<const uint16_t*>(v_tile), tid));
      // The scores of the next tile become its probabilities; O's factor goes to alpha.
      auto fold_next = [&](float(&alpha)[1][2]) {
        const KeyTileRef nt = cur.tiles[n + 1];
        if (p.transform) transform_scores<T>(s, p, cur.w, nt.index * T::kBlockN, warp_row0, lane);
        if (nt.slot != -1) mask_scores<T>(s, p, cur.w, nt, warp_row0, lane);
        softmax.fold(s, sl2, alpha);
      };
      const uint32_t k_next = sk + uint32_t(ks ^ 1) * T::kBytesK;
      // Each path is straight-line between a wgmma and its wait, so ptxas can see that no
      // accumulator is touched while in flight (a shared tail would serialize every wgmma).
      if (!exact) {
        if (n + 1 < count) {
          issue_qk_sm90<T>(s, base, k_next, wg);
          issue_pv_sm90<T>(o, pa, sv + uint32_t(vs) * T::kBytesV);
          wait_pin<1>(s);  // groups complete in order: S[n + 1], while P[n] V[n] may still run
          float alpha[1][2];
          fold_next(alpha);
          wait_pin<0>(o);
#pragma unroll
          for (int kc = 0; kc < T::kBlockN / 16; ++kc) sm90::fence_operands(pa[kc]);
          softmax.rescale(o, alpha);
          pack_p<T>(s, pa);
        } else {
          issue_pv_sm90<T>(o, pa, sv + uint32_t(vs) * T::kBytesV);
          wait_pin<0>(o);
        }
      } else {
        float pf[1][T::kNTiles][4];
        unpack_p<T>(pa, pf);
        exact_pv<T>(o, pf, p, cur.w, tile, reinterpret_cast<Elem*>(smem + T::kOffP), v_tile,
                    warp_row0, lane);
        if (n + 1 < count) {
          issue_qk_sm90<T>(s, base, k_next, wg);
          wait_pin<0>(s);
          float alpha[1][2];
          fold_next(alpha);
          softmax.rescale(o, alpha);
          pack_p<T>(s, pa);
        }
      }
    }
    kst ^= count & 1;
    vst ^= count & 1;
    if (!next_loaded) {
      // An item without key tiles, or none after it: nothing to overlap.
      __syncthreads();
      next_loaded = prefetch_next(kst, vst);
      ptx::cp_async_commit();
    }
    write_output<T, kPatched>(o, softmax, p, cur.w, sl2, warp_row0, lane);
    if (!cur.advance(p, sched, round)) break;
    loaded = next_loaded;
  }
  ptx::cp_async_wait<0>();  // nothing may still be landing in shared memory at exit
#else
  __trap();  // built without sm_90a code for this device: the dispatcher never launches it
#endif
}

}  // namespace polyhead::cuda
