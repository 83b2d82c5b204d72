// Epilogue of the warp-specialized kernel (fwd_ws/kernel.cuh): O leaves through shared memory.
// Written straight from the accumulators (fwd/epilogue.cuh), a warp store covers 16 bytes of 8
// rows; the window and neighborhood problems, whose items have about nine key tiles, spent
// 13-15% of their time there (a probe that skipped the epilogue: bench/results/
// gpu-ab_NVIDIA-H200_2026-11-28_call10.md). Here each consumer warpgroup
//   1. writes its 64 normalized rows into its own 64 rows of the Q tile, free once its last
//      S = Q K^T has completed (the other warpgroup's products read only its own rows), in Q's
//      layout: 64-column blocks of 128-byte rows, 16-byte chunks XOR-swizzled by row, so the
//      8 rows of a warp store fall in distinct banks;
//   2. waits on its own named barrier (4 + warpgroup, 128 threads);
//   3. copies them out 16 bytes per thread, a warp covering whole rows (one 256-byte row of
//      d128 per 16 lanes).
// The LSE goes out as before. Taken where O is 16-bit with 16-byte aligned rows; fp32 O, and
// the persistent kernel (whose producer refills Q while the consumers finish), keep
// write_output.
//
// With FwdParams::o_tma (O suits TMA) step 3 is one TMA store per 64 columns of the
// warpgroup's 64 rows, issued by one thread after the others have fenced their rows for the
// copy engine: the staged rows are already in the 128-byte-swizzled layout of a TMA box. In
// patch order the box is the 64 positions from the warpgroup's first row (whole rows of its
// (sub-)patch, launch.cuh), in place of a token lookup and a 16-byte store per chunk, which
// ptxas split into four 4-byte stores (NA-2D spent 11% of its consumers' samples under ncu in
// that epilogue, bench/results/ncu-source_NVIDIA-H200_2026-11-29_call30.md). The copy engine
// clips rows past the tensor; in a packed (varlen) batch rows past the sequence belong to the
// next one, so a warpgroup whose rows run past its sequence's end keeps the stores of step 3.
#pragma once

#include <cstdint>

#include "cuda/fwd/epilogue.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/wgmma.cuh"
#include "cuda/fwd_ws/consumer.cuh"
#include "cuda/fwd_ws/marks.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

// Whether O can take 16-byte stores: 16-bit elements and every row start 16-byte aligned. The
// launch asks the same before it builds O's tensor map for the TMA stores (launch.cuh).
__host__ __device__ __forceinline__ bool o_rows_vec16(const FwdParams& p) {
  const uint64_t bits = reinterpret_cast<uint64_t>(p.o) |
                        uint64_t(2 * (p.o_batch_stride | p.o_row_stride | p.o_head_stride));
  return !p.o_f32 && (bits & 15u) == 0;
}

// Byte offset of row r's 16-byte chunk c (8 columns) in the Q tile's layout (FwdWsTraits):
// sm90::swizzled_offset<128>(r, 8 c), in unsigned shifts. Calling that (signed int division
// and remainder) instead moved the register allocation of every ws kernel, which is not
// something to change without a GPU run.
template <typename T>
__device__ __forceinline__ uint32_t staged_chunk(int r, int c) {
  return uint32_t(c >> 3) * T::kQBlockBytes + uint32_t(r) * 128u +
         uint32_t(((c & 7) ^ (r & 7)) << 4);
}

// `q`: the shared-memory Q tile whose rows the item's O passes through (WsRing::q in the
// kernels of kernel.cuh).
template <typename T, bool kPatched>
__device__ __forceinline__ void write_output_ws(float (&o)[1][T::kDTiles][4], OnlineSoftmax<T>& sm,
                                                const FwdParams& p, const WorkTile& w, float sl2,
                                                const WsConsumer& c, uint32_t q,
                                                [[maybe_unused]] const CUtensorMap* to = nullptr) {
  static_assert(T::kHeadDimV <= T::kHeadDimQK, "O's rows fit in Q's");
  if (!o_rows_vec16(p)) {
    write_output<T, kPatched>(o, sm, p, w, sl2, c.warp_row0, c.lane);
    return;
  }
  using Elem = typename T::Elem;
  float inv[2], lse[2];
  for_each_row_end<T>(sm, p, w, sl2, c.warp_row0, c.lane,
                      [&](int, int h, RowEnd end, int32_t) { inv[h] = end.inv, lse[h] = end.lse; });
  // One stmatrix per two 8-column chunks: its four 8 x 8 matrices are (rows +0, chunk dt),
  // (rows +8, dt), (+0, dt + 1), (+8, dt + 1) of the warp's 16 rows, each thread holding in
  // matrix m the pair its accumulator holds there; lane l gives the address of row l % 8 of
  // matrix l / 8. 8 instructions at d128 where 4-byte stores took 32 (gpu-ab call 70: one-tile
  // items 1.021x, 512 keys 1.006-1.007x, the window 1.005x, 16k within 0.3%).
  static_assert(T::kDTiles % 2 == 0, "pairs of 8-column chunks");
  const int m = c.lane >> 3;
  const int row = c.warp_row0 + 8 * (m & 1) + (c.lane & 7);  // row of the 128-row tile
#pragma unroll
  for (int dt = 0; dt < T::kDTiles; dt += 2) {
    uint32_t v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int d = dt + (k >> 1), h = k & 1;
      v[k] = ptx::pack2<Elem>(o[0][d][2 * h] * inv[h], o[0][d][2 * h + 1] * inv[h]);
    }
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};" ::"r"(
                     q + staged_chunk<T>(row, dt + (m >> 1))),
                 "r"(v[0]), "r"(v[1]), "r"(v[2]), "r"(v[3])
                 : "memory");
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int32_t i = w.q_tile * T::kBlockM + c.warp_row0 + (c.lane >> 2) + 8 * h;
    if (p.lse != nullptr && (c.lane & 3) == 0 && i < w.seqlen_q) {
      lse_at(p, w, kPatched ? p.order.token(i) : i) = lse[h];
    }
  }
  if (c.ctid == 0) timeline_mark(p, kTlOwnRows0);
  const int32_t row0 = w.q_tile * T::kBlockM + 64 * c.cw;  // the warpgroup's first row
  if (p.o_tma && (p.cu_seqlens_q == nullptr || row0 + 64 <= w.seqlen_q)) {
    sm90::fence_proxy_async();  // this thread's rows, visible to the copy engine
    asm volatile("bar.sync %0, 128;" ::"r"(4 + c.cw) : "memory");
    if ((c.ctid & 127) == 0) {
      timeline_mark(p, kTlStaged0 + c.cw);
      const uint32_t src = q + uint32_t(c.cw) * (64u * 128u);
      if constexpr (kPatched) {  // the box of the 64 positions from row0 (launch.cuh)
        int32_t at[3];
        p.order.coords(row0, at);
#pragma unroll
        for (int cb = 0; cb < T::kHeadDimV / 64; ++cb) {
          tma::store_5d(to, src + uint32_t(cb) * T::kQBlockBytes, cb * 64, w.head, at[2], at[1],
                        w.batch);
        }
      } else {
#pragma unroll
        for (int cb = 0; cb < T::kHeadDimV / 64; ++cb) {
          tma::store_4d(to, src + uint32_t(cb) * T::kQBlockBytes, cb * 64, w.head, w.q_start + row0,
                        w.batch);
        }
      }
      tma::commit_stores();
      tma::wait_stores_read();  // the Q tile's rows stay until the copy has read them
    }
    return;
  }
  asm volatile("bar.sync %0, 128;" ::"r"(4 + c.cw) : "memory");
  if ((c.ctid & 127) == 0) timeline_mark(p, kTlStaged0 + c.cw);
  constexpr int kChunks = T::kHeadDimV / 8;  // 16-byte chunks per row
  const int t = c.ctid & 127;
  const int64_t o_base = o_head_offset(p, w);
#pragma unroll
  for (int k = 0; k < 64 * kChunks / 128; ++k) {
    const int at = t + 128 * k;
    const int r = 64 * c.cw + at / kChunks, ch = at % kChunks;
    const int32_t i = w.q_tile * T::kBlockM + r;
    if (i >= w.seqlen_q) continue;
    uint32_t x, y, z, u;
    asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(x), "=r"(y), "=r"(z), "=r"(u)
                 : "r"(q + staged_chunk<T>(r, ch)));
    const int32_t token = kPatched ? p.order.token(i) : i;
    Elem* out =
        static_cast<Elem*>(p.o) + o_base + int64_t(w.q_start + token) * p.o_row_stride + ch * 8;
    *reinterpret_cast<uint4*>(out) = make_uint4(x, y, z, u);
  }
}

}  // namespace polyhead::cuda
