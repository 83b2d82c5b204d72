// The Hopper forward kernel (sm_90a): FlashAttention-2's algorithm on the warpgroup tensor-core
// instructions. One CTA of two warpgroups (three at Dqk = 64) per (sequence, query head, query
// tile of 64 rows per warpgroup), one CTA per SM; warpgroup g owns rows [64 g, 64 g + 64). The Q
// tile stays in shared memory; K and V tiles are double-buffered, so the load of key tile n + 1
// runs during all of iteration n (the first tile's V has its own group, so S = Q K[0]^T does not
// wait for it):
//
//   wait tile n, barrier | issue K, V [n + 1] | S = Q K[n]^T (wgmma SS) | transform, mask,
//   online softmax (registers) | (partial tile: Inf/NaN test of V[n]) | O += P V[n] (wgmma RS,
//   P from registers)
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

template <typename T>
__global__ void __launch_bounds__(T::kThreads, 1)
    fwd_sm90_kernel(const __grid_constant__ FwdParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename T::Elem;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  WorkTile w;
  if (!resolve_work<T::kBlockM>(p, w)) return;

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int warp_row0 = warp * 16;
  const uint32_t raw = ptx::smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;  // swizzle atoms are 1024-byte aligned
  unsigned char* smem = smem_raw + (base - raw);
  const uint32_t sq = base, sk = base + T::kOffK, sv = base + T::kOffV;

  const int32_t i0 = w.q_tile * T::kBlockM;
  const TileOrigins<Elem> g(p, w, i0);
  const Elem *gq = g.q, *gk = g.k, *gv = g.v;

  const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
  const float sl2 = p.transform ? 1.0f : p.scale_log2;

  auto load_k = [&](int32_t kt, int stage) {
    load_tile_sw128<T::kBlockN, T::kHeadDimQK, T::kThreads>(
        sk + uint32_t(stage) * T::kBytesK, gk + int64_t(kt) * T::kBlockN * p.k_row_stride,
        p.k_row_stride, w.seqlen_k - kt * T::kBlockN, tid);
  };
  auto load_v = [&](int32_t kt, int stage) {
    load_tile_sw128<T::kBlockN, T::kHeadDimV, T::kThreads>(
        sv + uint32_t(stage) * T::kBytesV, gv + int64_t(kt) * T::kBlockN * p.v_row_stride,
        p.v_row_stride, w.seqlen_k - kt * T::kBlockN, tid);
  };

  load_tile_sw128<T::kBlockM, T::kHeadDimQK, T::kThreads>(sq, gq, p.q_row_stride, w.seqlen_q - i0,
                                                          tid);
  // Two groups for the first tile: S = Q K[0]^T starts when Q and K[0] have landed, while
  // V[0] is still on its way (it is waited for before the first P V).
  KeyTileRef tile{};
  if (tiles.count > 0) {
    tile = tiles[0];
    load_k(tile.index, 0);
  }
  ptx::cp_async_commit();
  if (tiles.count > 0) load_v(tile.index, 0);
  ptx::cp_async_commit();

  float o[1][T::kDTiles][4];
#pragma unroll
  for (int dt = 0; dt < T::kDTiles; ++dt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.0f;
  }
  OnlineSoftmax<T> softmax;

  for (int32_t n = 0; n < tiles.count; ++n) {
    const int stage = n & 1;
    if (n == 0) {
      ptx::cp_async_wait<1>();  // Q and K[0]
    } else {
      ptx::cp_async_wait<0>();
    }
    sm90::fence_proxy_async();  // cp.async wrote through the generic proxy; wgmma reads async
    __syncthreads();            // tile n (and Q) landed; every warp is done with the other stage
    KeyTileRef next{};
    if (n + 1 < tiles.count) {
      next = tiles[n + 1];
      load_k(next.index, stage ^ 1);
      load_v(next.index, stage ^ 1);
    }
    ptx::cp_async_commit();

    float s[1][T::kNTiles][4];
    gemm_qk_sm90<T>(s, sq, sk + uint32_t(stage) * T::kBytesK, wg);
    if (p.transform) transform_scores<T>(s, p, w, tile.index * T::kBlockN, warp_row0, lane);
    if (tile.slot != -1) mask_scores<T>(s, p, w, tile, warp_row0, lane);

    softmax.update(s, o, sl2);

    if (n == 0) {
      ptx::cp_async_wait<1>();  // V[0] too (tile 1's group, committed last, may still fly)
      sm90::fence_proxy_async();
      __syncthreads();
    }
    const Elem* v_tile = reinterpret_cast<const Elem*>(smem + T::kOffV + stage * T::kBytesV);
    // A partial tile whose values hold Inf/NaN takes the exact path (exact_pv.cuh).
    const bool exact = tile.slot != -1 && __syncthreads_or(v_tile_nonfinite<T>(
                                              reinterpret_cast<const uint16_t*>(v_tile), tid));
    if (!exact) {
      gemm_pv_sm90<T>(o, s, sv + uint32_t(stage) * T::kBytesV);
    } else {
      exact_pv<T>(o, s, p, w, tile, reinterpret_cast<Elem*>(smem + T::kOffP), v_tile, warp_row0,
                  lane);
    }
    tile = next;
  }
  ptx::cp_async_wait<0>();  // nothing may still be landing in shared memory at exit
  write_output<T>(o, softmax, p, w, sl2, warp_row0, lane);
#else
  __trap();  // built without sm_90a code for this device: the dispatcher never launches it
#endif
}

}  // namespace polyhead::cuda
