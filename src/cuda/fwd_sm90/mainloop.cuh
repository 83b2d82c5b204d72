// Shared-memory layout, global->shared tile loads and the two tensor-core products of the
// Hopper forward kernel: S = Q K^T (wgmma, A and B from shared memory) and O += P V (wgmma, P
// from registers). Every tile is stored in the 128-byte swizzled layout of wgmma.cuh, so no
// padding and no bank conflicts for either the cp.async writes or the tensor-core reads.
//
// Shared memory (bytes, each region 1024-aligned): Q [kQStages][kBlockM x Dqk], K [2][kBlockN x
// Dqk], V [2][kBlockN x Dv] (double-buffered: tile n + 1 loads during the whole of iteration n),
// and the P scratch of the exact path (exact_pv.cuh).
#pragma once

#include <cstdint>

#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd/tile_load.cuh"
#include "cuda/fwd/tile_size.h"
#include "cuda/fwd/token_order.h"
#include "cuda/fwd_sm90/wgmma.cuh"

namespace polyhead::cuda {

template <typename Elem_, int Dqk, int Dv>
struct FwdSm90Traits : FwdTraitsBase<Elem_, Dqk, Dv, FwdSm90Tile<Dqk, Dv>> {
  using Base = FwdTraitsBase<Elem_, Dqk, Dv, FwdSm90Tile<Dqk, Dv>>;
  using Base::kBlockM, Base::kBlockN, Base::kWarps;
  static constexpr int kMTiles = 1;  // each warp owns 16 rows: its slice of a wgmma m64
  static constexpr uint32_t kBytesQ = kBlockM * Dqk * 2;
  static constexpr uint32_t kBytesK = kBlockN * Dqk * 2;
  static constexpr uint32_t kBytesV = kBlockN * Dv * 2;
  static constexpr uint32_t kBytesAfterQ = 2 * (kBytesK + kBytesV) + kBlockM * kBlockN * 2 + 1024;
  // Two Q buffers where they fit, so the next work item's Q loads during this item's last key
  // tile (kernel.cuh); otherwise (Dqk 256, and Dqk 64 and 128 with two CTAs per SM) it loads during
  // the epilogue. With two CTAs per SM (Base::kMinBlocksPerSm) each gets half of the SM's 228 KiB,
  // less the 1 KiB the hardware reserves per CTA.
  static constexpr uint32_t kSmemBudget = (228 * 1024) / Base::kMinBlocksPerSm - 1024;
  static constexpr int kQStages = 2 * kBytesQ + kBytesAfterQ <= kSmemBudget ? 2 : 1;
  static constexpr uint32_t kOffK = kQStages * kBytesQ;
  static constexpr uint32_t kOffV = kOffK + 2 * kBytesK;
  static constexpr uint32_t kOffP = kOffV + 2 * kBytesV;
  static constexpr uint32_t kSmemBytes = kOffP + kBlockM * kBlockN * 2 + 1024;  // + alignment
  __device__ static constexpr int v_index(int key, int col) {
    return int(sm90::swizzled_offset<kBlockN>(key, col) / 2);
  }
  static_assert(kWarps * 16 == kBlockM && kBlockM % 64 == 0, "warpgroups of 64 rows");
  static_assert(Dqk % 64 == 0 && Dv % 64 == 0, "128-byte swizzle blocks");
  static_assert(kBlockN % 32 == 0 && kBlockN <= 128, "bitmask and exact-path granularity");
  static_assert(kSmemBytes <= kSmemBudget, "shared memory of one SM (per CTA)");
};

// The 128-byte swizzled layout of a kRows-row tile (wgmma.cuh): 8-row atoms, so only steps
// of whole atoms move every column by the same distance.
template <int kRows>
struct Swizzled128 {
  __host__ __device__ static constexpr uint32_t offset(int row, int col) {
    return sm90::swizzled_offset<kRows>(row, col);
  }
  __host__ __device__ static constexpr bool uniform_step(int rows) { return rows % 8 == 0; }
};

// Loads rows [0, kRows) of a [rows, kCols] global tile into the swizzled layout
// (tile_load.cuh); rows >= rows_valid are zero-filled and read nothing.
template <int kRows, int kCols, int kThreads, typename Elem>
__device__ __forceinline__ void load_tile_sw128(uint32_t smem, const Elem* gmem, int64_t row_stride,
                                                int rows_valid, int tid) {
  load_tile_rows<kRows, kCols, kThreads, Swizzled128<kRows>>(smem, gmem, row_stride, rows_valid,
                                                             tid);
}

// The chunks of a tile of positions [pos0, pos0 + kRows) in patch order (token_order.h) that
// thread `tid` copies (chunks tid + k * kThreads, as load_tile_rows): calls
// copy(token, smem offset, column) for each, row r being token order.token(pos0 + r) of the
// sequence. The tile lies inside one patch (pos0 is a multiple of kRows, which divides the
// 128-token patch) and every row is valid.
template <int kRows, int kCols, int kThreads, typename Copy>
__device__ __forceinline__ void for_each_ordered_chunk(const TokenOrder& order, int32_t pos0,
                                                       int tid, Copy&& copy) {
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  const int32_t origin = order.patch_origin(pos0 >> order.patch_bits);
  const int32_t within0 = pos0 & ((1 << order.patch_bits) - 1);
#pragma unroll
  for (int it = 0; it < (kChunks + kThreads - 1) / kThreads; ++it) {
    const int c = tid + it * kThreads;
    if (kChunks % kThreads != 0 && c >= kChunks) break;
    const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    copy(int64_t(origin + order.within_offset(within0 + row)),
         sm90::swizzled_offset<kRows>(row, col), col);
  }
}

// A tile of the sequence at `seq` in patch order, into the swizzled layout.
template <int kRows, int kCols, int kThreads, typename Elem>
__device__ __forceinline__ void load_tile_sw128_ordered(uint32_t smem, const Elem* seq,
                                                        int64_t row_stride, const TokenOrder& order,
                                                        int32_t pos0, int tid) {
  for_each_ordered_chunk<kRows, kCols, kThreads>(
      order, pos0, tid, [&](int64_t token, uint32_t off, int col) {
        ptx::cp_async_16(smem + off, seq + token * row_stride + col, true);
      });
}

// K and V tiles of the same positions in patch order, both kCols wide (Dqk = Dv): each row's
// token is computed once for the two copies.
template <int kRows, int kCols, int kThreads, typename Elem>
__device__ __forceinline__ void load_kv_sw128_ordered(uint32_t sk, uint32_t sv, const Elem* kseq,
                                                      const Elem* vseq, int64_t k_row_stride,
                                                      int64_t v_row_stride, const TokenOrder& order,
                                                      int32_t pos0, int tid) {
  for_each_ordered_chunk<kRows, kCols, kThreads>(
      order, pos0, tid, [&](int64_t token, uint32_t off, int col) {
        ptx::cp_async_16(sk + off, kseq + token * k_row_stride + col, true);
        ptx::cp_async_16(sv + off, vseq + token * v_row_stride + col, true);
      });
}

// Issues s = Q[this warpgroup's 64 rows] K^T over the whole Dqk (Dqk / 16 wgmma k-steps, one
// group); s is valid after wait_qk_sm90.
template <typename T>
__device__ __forceinline__ void issue_qk_sm90(float (&s)[1][T::kNTiles][4], uint32_t sq,
                                              uint32_t sk, int wg) {
  sm90::fence_operands(s[0]);
  sm90::fence();
  const uint64_t a0 = sm90::desc_sw128(sq + uint32_t(wg * 64 * 128), 16, 1024);
  const uint64_t b0 = sm90::desc_sw128(sk, 16, 1024);
#pragma unroll
  for (int kk = 0; kk < T::kHeadDimQK / 16; ++kk) {
    const uint64_t a =
        sm90::desc_advance(a0, uint32_t((kk / 4) * T::kBlockM * 128 + (kk % 4) * 32));
    const uint64_t b =
        sm90::desc_advance(b0, uint32_t((kk / 4) * T::kBlockN * 128 + (kk % 4) * 32));
    sm90::wgmma_ss<typename T::Elem, T::kBlockN>(s[0], a, b, kk > 0 ? 1 : 0);
  }
  sm90::commit();
}
template <typename T>
__device__ __forceinline__ void wait_qk_sm90(float (&s)[1][T::kNTiles][4]) {
  sm90::wait<0>();
  sm90::fence_operands(s[0]);
}

// The sum of this thread's O accumulators, in four chains: non-finite when any of them is.
template <typename T>
__device__ __forceinline__ float o_sum(const float (&o)[1][T::kDTiles][4]) {
  float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int dt = 0; dt < T::kDTiles; ++dt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) a[e] += o[0][dt][e];
  }
  return (a[0] + a[1]) + (a[2] + a[3]);
}

// P, the probabilities in s rounded to Elem, as wgmma A fragments: the m64nN accumulator of
// each warp is laid out as mma.sync's m16n8 tiles, so two adjacent n8 tiles are one k16 A
// fragment.
template <typename T>
__device__ __forceinline__ void pack_p_sm90(uint32_t (&pa)[T::kBlockN / 16][4],
                                            const float (&s)[1][T::kNTiles][4]) {
  using Elem = typename T::Elem;
#pragma unroll
  for (int kc = 0; kc < T::kBlockN / 16; ++kc) {
    pa[kc][0] = ptx::pack2<Elem>(s[0][2 * kc][0], s[0][2 * kc][1]);
    pa[kc][1] = ptx::pack2<Elem>(s[0][2 * kc][2], s[0][2 * kc][3]);
    pa[kc][2] = ptx::pack2<Elem>(s[0][2 * kc + 1][0], s[0][2 * kc + 1][1]);
    pa[kc][3] = ptx::pack2<Elem>(s[0][2 * kc + 1][2], s[0][2 * kc + 1][3]);
  }
}

// Issues o += P V as one wgmma group; o and pa stay in flight until sm90::wait.
template <typename T>
__device__ __forceinline__ void issue_pv_sm90(float (&o)[1][T::kDTiles][4],
                                              uint32_t (&pa)[T::kBlockN / 16][4], uint32_t sv) {
  sm90::fence_operands(o[0]);
  sm90::fence();
  const uint64_t b0 = sm90::desc_sw128(sv, T::kBlockN * 128, 1024);
#pragma unroll
  for (int kc = 0; kc < T::kBlockN / 16; ++kc) {
    sm90::wgmma_rs<typename T::Elem, T::kHeadDimV>(
        o[0], pa[kc], sm90::desc_advance(b0, uint32_t(kc * 16 * 128)), 1);
  }
  sm90::commit();
}

// After sm90::wait: o and pa are the registers' again.
template <typename T>
__device__ __forceinline__ void settle_pv_sm90(float (&o)[1][T::kDTiles][4],
                                               uint32_t (&pa)[T::kBlockN / 16][4]) {
  sm90::fence_operands(o[0]);
#pragma unroll
  for (int kc = 0; kc < T::kBlockN / 16; ++kc) sm90::fence_operands(pa[kc]);
}

// o += P V, P being the probabilities in s rounded to Elem.
template <typename T>
__device__ __forceinline__ void gemm_pv_sm90(float (&o)[1][T::kDTiles][4],
                                             const float (&s)[1][T::kNTiles][4], uint32_t sv) {
  uint32_t pa[T::kBlockN / 16][4];
  pack_p_sm90<T>(pa, s);
  issue_pv_sm90<T>(o, pa, sv);
  sm90::wait<0>();
  settle_pv_sm90<T>(o, pa);
}

}  // namespace polyhead::cuda
