// Shared-memory layout, global->shared tile loads and the two tensor-core products of the
// forward kernel: S = Q K^T and O += P V, with mma.sync m16n8k16 and ldmatrix.
//
// Shared memory holds one Q tile (resident for the whole CTA) and one K and one V tile,
// refilled per key tile (FlashAttention-2's schedule, kernel.cuh). Rows are padded by 8
// elements (16 bytes): a row of (D + 8) * 2 bytes is an odd number of 16-byte chunks for
// every supported D, so the 8 row addresses of one ldmatrix phase fall into 8 different
// 16-byte bank groups (no conflicts), and every tile offset is a compile-time constant.
#pragma once

#include <cstdint>

#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd/tile_load.cuh"
#include "cuda/fwd/tile_size.h"

namespace polyhead::cuda {

template <typename Elem_, int Dqk, int Dv>
struct FwdKernelTraits : FwdTraitsBase<Elem_, Dqk, Dv, FwdTile<Dqk, Dv>> {
  using Base = FwdTraitsBase<Elem_, Dqk, Dv, FwdTile<Dqk, Dv>>;
  using Base::kBlockM, Base::kBlockN, Base::kWarps;
  static constexpr int kMTiles = kBlockM / (16 * kWarps);  // m16 tiles per warp
  static constexpr int kRowQK = Dqk + 8;                   // padded smem row (elements)
  static constexpr int kRowV = Dv + 8;
  static constexpr int kSmemQ = kBlockM * kRowQK;  // elements
  static constexpr int kSmemK = kBlockN * kRowQK;
  static constexpr int kSmemV = kBlockN * kRowV;
  static constexpr int kSmemP = kBlockM * kBlockN;  // P of the exact path (exact_pv.cuh)
  static constexpr int kSmemBytes = (kSmemQ + kSmemK + kSmemV + kSmemP) * 2;
  // Element index of V[key][col] in the V tile (exact_pv.cuh reads V through it).
  __device__ static constexpr int v_index(int key, int col) { return key * kRowV + col; }
  static_assert(kMTiles >= 1 && kBlockM == 16 * kWarps * kMTiles, "rows split evenly over warps");
  static_assert(Dqk % 16 == 0 && Dv % 16 == 0 && kBlockN % 32 == 0, "mma and bitmask granularity");
  static_assert(((Dqk + 8) / 8) % 2 == 1 && ((Dv + 8) / 8) % 2 == 1, "padding must be odd chunks");
};

// Loads rows [0, kRows) of a [rows, kCols] tile into smem rows of kRowStride elements
// (tile_load.cuh); rows >= rows_valid are zero-filled and read nothing.
template <int kRows, int kCols, int kRowStride, int kThreads, typename Elem>
__device__ __forceinline__ void load_tile(uint32_t smem, const Elem* gmem, int64_t row_stride,
                                          int rows_valid, int tid) {
  load_tile_rows<kRows, kCols, kThreads, PaddedRows<kRowStride>>(smem, gmem, row_stride, rows_valid,
                                                                 tid);
}

// Per-lane shared-memory addresses of the ldmatrix operands; each product then adds only
// compile-time offsets.
template <typename T>
struct FragAddrs {
  uint32_t q, k, v;
  __device__ __forceinline__ FragAddrs(uint32_t sq, uint32_t sk, uint32_t sv, int warp, int lane) {
    const int warp_row0 = warp * T::kMTiles * 16;
    // Q (A operand, 16x16 per ldmatrix.x4): rows lane % 16, columns 8 * (lane / 16).
    q = sq + uint32_t(((warp_row0 + (lane & 15)) * T::kRowQK + (lane >> 4) * 8) * 2);
    // K (B operand of two n8 tiles): keys 8 * (lane / 16) + lane % 8, dims 8 * (lane / 8 % 2).
    k = sk + uint32_t((((lane >> 4) * 8 + (lane & 7)) * T::kRowQK + ((lane >> 3) & 1) * 8) * 2);
    // V (B operand via .trans): keys 8 * (lane / 8 % 2) + lane % 8, dims 8 * (lane / 16).
    v = sv + uint32_t(((((lane >> 3) & 1) * 8 + (lane & 7)) * T::kRowV + (lane >> 4) * 8) * 2);
  }
};

// s[mt][nt] = Q[warp rows] * K^T over the whole Dqk, for this warp's 16 * kMTiles rows.
template <typename T>
__device__ __forceinline__ void gemm_qk(float (&s)[T::kMTiles][T::kNTiles][4],
                                        const FragAddrs<T>& a) {
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int nt = 0; nt < T::kNTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;
    }
  }
#pragma unroll
  for (int kk = 0; kk < T::kHeadDimQK / 16; ++kk) {
    uint32_t qa[T::kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
      ptx::ldmatrix_x4(a.q + uint32_t((mt * 16 * T::kRowQK + kk * 16) * 2), qa[mt]);
    }
#pragma unroll
    for (int np = 0; np < T::kNTiles / 2; ++np) {
      uint32_t kb[4];
      ptx::ldmatrix_x4(a.k + uint32_t((np * 16 * T::kRowQK + kk * 16) * 2), kb);
#pragma unroll
      for (int mt = 0; mt < T::kMTiles; ++mt) {
        ptx::mma_16816<typename T::Elem>(s[mt][2 * np], qa[mt], kb[0], kb[1]);
        ptx::mma_16816<typename T::Elem>(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
      }
    }
  }
}

// o[mt][dt] += P * V, P being the probabilities in s (fp32), rounded to Elem. The m16n8
// accumulator layout of two adjacent n8 tiles is exactly the m16k16 A-operand layout, so P
// goes from registers to the tensor cores without shared memory.
template <typename T>
__device__ __forceinline__ void gemm_pv(float (&o)[T::kMTiles][T::kDTiles][4],
                                        const float (&s)[T::kMTiles][T::kNTiles][4],
                                        const FragAddrs<T>& a) {
  using Elem = typename T::Elem;
#pragma unroll
  for (int kc = 0; kc < T::kBlockN / 16; ++kc) {
    uint32_t pa[T::kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
      pa[mt][0] = ptx::pack2<Elem>(s[mt][2 * kc][0], s[mt][2 * kc][1]);
      pa[mt][1] = ptx::pack2<Elem>(s[mt][2 * kc][2], s[mt][2 * kc][3]);
      pa[mt][2] = ptx::pack2<Elem>(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
      pa[mt][3] = ptx::pack2<Elem>(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
    }
#pragma unroll
    for (int dp = 0; dp < T::kDTiles / 2; ++dp) {
      uint32_t vb[4];
      ptx::ldmatrix_x4_trans(a.v + uint32_t((kc * 16 * T::kRowV + dp * 16) * 2), vb);
#pragma unroll
      for (int mt = 0; mt < T::kMTiles; ++mt) {
        ptx::mma_16816<Elem>(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
        ptx::mma_16816<Elem>(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
      }
    }
  }
}

}  // namespace polyhead::cuda
