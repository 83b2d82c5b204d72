// The tensor-core forward kernel (FlashAttention-2's algorithm, sm_80 and newer): one CTA per
// (sequence, query head, query tile of kBlockM rows). The Q tile stays in shared memory; key
// tiles stream through one K and one V buffer with cp.async so that each load overlaps the
// other half of the iteration:
//
//   wait K[n]  | issue V[n]   | S = Q K[n]^T, transform, mask   |
//   wait V[n]  | issue K[n+1] | online softmax, O += P V[n]     |
//
// Every feature is a uniform run-time branch (params.h): the per-tile cost of a disabled one
// is one predicate, so one instantiation per (dtype, Dqk, Dv) serves every problem.
#pragma once

#include <cstdint>

#include "cuda/fwd/epilogue.cuh"
#include "cuda/fwd/exact_pv.cuh"
#include "cuda/fwd/mainloop.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

template <typename T>
__global__ void __launch_bounds__(T::kThreads, T::kMinBlocksPerSm)
    fwd_kernel(const __grid_constant__ FwdParams p) {
  using Elem = typename T::Elem;
  extern __shared__ __align__(128) unsigned char smem[];
  WorkTile w;
  if (!resolve_work<T::kBlockM>(p, w)) return;

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int warp_row0 = warp * T::kMTiles * 16;
  const uint32_t sq = ptx::smem_u32(smem);
  const uint32_t sk = sq + uint32_t(T::kSmemQ * 2);
  const uint32_t sv = sk + uint32_t(T::kSmemK * 2);
  const FragAddrs<T> frag(sq, sk, sv, warp, lane);

  const int32_t i0 = w.q_tile * T::kBlockM;
  const TileOrigins<Elem> g(p, w, i0);
  const Elem *gq = g.q, *gk = g.k, *gv = g.v;

  const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
  const float sl2 = p.transform ? 1.0f : p.scale_log2;
  // The window rows' bounds once per item (RowWindow, work.cuh) where the tile has 64 keys:
  // gpu-ab call 74, bf16: window d128 1.035x, causal d128 1.015-1.031x. The 128-key d64 tile
  // (S alone takes 128 registers) held them across its loop with more spills and ran 0.987x,
  // so it keeps the per-tile window rule.
  constexpr bool kItemWindow = T::kBlockN == 64;
  [[maybe_unused]] const auto win =
      kItemWindow ? row_window<T::kBlockM, T::kMTiles>(p, w, warp_row0 + (lane >> 2))
                  : RowWindow<T::kMTiles>{};

  auto load_k = [&](int32_t kt) {
    load_tile<T::kBlockN, T::kHeadDimQK, T::kRowQK, T::kThreads>(
        sk, gk + int64_t(kt) * T::kBlockN * p.k_row_stride, p.k_row_stride,
        w.seqlen_k - kt * T::kBlockN, tid);
  };
  auto load_v = [&](int32_t kt) {
    load_tile<T::kBlockN, T::kHeadDimV, T::kRowV, T::kThreads>(
        sv, gv + int64_t(kt) * T::kBlockN * p.v_row_stride, p.v_row_stride,
        w.seqlen_k - kt * T::kBlockN, tid);
  };

  load_tile<T::kBlockM, T::kHeadDimQK, T::kRowQK, T::kThreads>(sq, gq, p.q_row_stride,
                                                               w.seqlen_q - i0, tid);
  KeyTileRef tile{};
  if (tiles.count > 0) {
    tile = tiles[0];
    load_k(tile.index);
  }
  ptx::cp_async_commit();

  float o[T::kMTiles][T::kDTiles][4];
  zero_o<T>(o);
  OnlineSoftmax<T> softmax;

  for (int32_t n = 0; n < tiles.count; ++n) {
    ptx::cp_async_wait<0>();
    __syncthreads();  // K[n] (and Q) landed; every warp is done reading V[n - 1]
    load_v(tile.index);
    ptx::cp_async_commit();

    float s[T::kMTiles][T::kNTiles][4];
    gemm_qk<T>(s, frag);
    if (p.transform) transform_scores<T>(s, p, w, tile.index * T::kBlockN, warp_row0, lane);
    if (tile.slot != -1) {
      if constexpr (kItemWindow) {
        mask_scores<T>(s, p, w, tile, win, warp_row0, lane);
      } else {
        mask_scores<T>(s, p, w, tile, warp_row0, lane);
      }
    }

    ptx::cp_async_wait<0>();
    // V[n] landed; every warp is done reading K[n]. A partial tile whose values hold Inf/NaN
    // takes the exact path (exact_pv.cuh): each thread tests the V chunks it copied itself
    // (visible to it after its wait) and the barrier ORs the answers.
    bool exact = false;
    barrier_v_nonfinite<T>(tile, reinterpret_cast<const uint16_t*>(smem) + T::kSmemQ + T::kSmemK,
                           tid, exact);
    if (n + 1 < tiles.count) load_k(tiles[n + 1].index);
    ptx::cp_async_commit();

    softmax.update(s, o, sl2, n == 0);
    if (!exact) {
      gemm_pv<T>(o, s, frag);
    } else {
      Elem* base = reinterpret_cast<Elem*>(smem);
      exact_pv<T>(o, s, p, w, tile, base + T::kSmemQ + T::kSmemK + T::kSmemV,
                  base + T::kSmemQ + T::kSmemK, warp_row0, lane);
    }
    if (n + 1 < tiles.count) tile = tiles[n + 1];
  }
  ptx::cp_async_wait<0>();  // nothing may still be landing in shared memory at exit
  write_output<T>(o, softmax, p, w, sl2, warp_row0, lane);
}

}  // namespace polyhead::cuda
