// Epilogue of the tensor-core forward kernel: folds in the sink logit, normalizes O by the
// softmax sum and writes O (input dtype or fp32) and the LSE once, straight from registers.
// Each quad of lanes writes 8 consecutive columns (16 bytes of bf16) of a row per store: half
// of a 32-byte sector, 8 rows per warp store. The warp-specialized kernel stages its O through
// shared memory instead (fwd_ws/epilogue.cuh).
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

// The end of one row: the factor that normalizes its O (the sink folded in) and its LSE in
// natural log. No visible key: o = 0, lse = -inf (or the sink's logit). fmaxf skips NaN, so a
// row whose visible scores are all NaN also keeps m = -inf; its sum l is NaN, and the other
// branch turns o and lse into NaN as the reference does. Every lane of the row's quad returns
// the same values.
struct RowEnd {
  float inv, lse;
};
template <typename T>
__device__ __forceinline__ RowEnd finish_row(const OnlineSoftmax<T>& sm, int mt, int h, float sink,
                                             float sl2, bool has_sink) {
  float l = quad_sum(sm.l[mt][h]);
  const float m = sm.m[mt][h];
  if (m == -INFINITY && !isnan(l)) return {0.0f, sink};
  float m2 = m * sl2, o_scale = 1.0f;
  if (has_sink) {  // the sink adds exp(sink) to the denominator and nothing to O
    const float mf = fmaxf(m2, sink * kLog2e);
    o_scale = ptx::exp2_approx(m2 - mf);
    l = fmaf(l, o_scale, ptx::exp2_approx(sink * kLog2e - mf));
    m2 = mf;
  }
  return {o_scale * ptx::rcp_approx(l), (m2 + log2f(l)) * kLn2};
}

// Each of this thread's rows of O (r + 16 mt and r + 16 mt + 8 of its warp's m16 tiles, from
// r = warp_row0 + lane / 4): fn(mt, h, end, i) with its finish_row and its row i of the
// sequence, which may lie past seqlen_q.
template <typename T, typename Fn>
__device__ __forceinline__ void for_each_row_end(const OnlineSoftmax<T>& sm, const FwdParams& p,
                                                 const WorkTile& w, float sl2, int warp_row0,
                                                 int lane, Fn&& fn) {
  const float sink = head_sink(p, w);
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const RowEnd end = finish_row<T>(sm, mt, h, sink, sl2, p.sinks != nullptr);
      fn(mt, h, end, w.q_tile * T::kBlockM + warp_row0 + mt * 16 + (lane >> 2) + 8 * h);
    }
  }
}

// kPatched: rows are positions in patch order (token_order.h), written to their tokens.
template <typename T, bool kPatched = false>
__device__ __forceinline__ void write_output(float (&o)[T::kMTiles][T::kDTiles][4],
                                             OnlineSoftmax<T>& sm, const FwdParams& p,
                                             const WorkTile& w, float sl2, int warp_row0,
                                             int lane) {
  using Elem = typename T::Elem;
  const int64_t o_base = o_head_offset(p, w);
  for_each_row_end<T>(sm, p, w, sl2, warp_row0, lane, [&](int mt, int h, RowEnd end, int32_t i) {
    if (i >= w.seqlen_q) return;
    const int32_t token = kPatched ? p.order.token(i) : i;
    const int64_t row = o_base + int64_t(w.q_start + token) * p.o_row_stride;
    if (p.o_f32) {
      float* out = static_cast<float*>(p.o) + row + 2 * (lane & 3);
#pragma unroll
      for (int dt = 0; dt < T::kDTiles; ++dt) {
        *reinterpret_cast<float2*>(out + dt * 8) =
            make_float2(o[mt][dt][2 * h] * end.inv, o[mt][dt][2 * h + 1] * end.inv);
      }
    } else {
      Elem* out = static_cast<Elem*>(p.o) + row + 2 * (lane & 3);
#pragma unroll
      for (int dt = 0; dt < T::kDTiles; ++dt) {
        *reinterpret_cast<uint32_t*>(out + dt * 8) =
            ptx::pack2<Elem>(o[mt][dt][2 * h] * end.inv, o[mt][dt][2 * h + 1] * end.inv);
      }
    }
    if (p.lse != nullptr && (lane & 3) == 0) lse_at(p, w, token) = end.lse;
  });
}

// The 4 x 4 transpose of 32-bit words across a quad of lanes (q = lane & 3): on return w[j]
// holds what lane j's w[q] held. Two exchanges (lanes q ^ 1, then q ^ 2) of two words each.
__device__ __forceinline__ void quad_transpose(uint32_t (&w)[4], int lane) {
#pragma unroll
  for (int bit = 0; bit < 2; ++bit) {  // bit 0: words 2c + d with d != q's bit 0; then bit 1
    const int step = 1 << bit;         // 1, then 2: the partner and the word-index bit flipped
    const bool up = (lane >> bit) & 1;
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      // The pair of words that differ in `bit`: lo has it clear, hi set.
      const int lo = bit == 0 ? 2 * c : c, hi = lo + step;
      const uint32_t send = up ? w[lo] : w[hi];
      const uint32_t got = __shfl_xor_sync(0xffffffffu, send, step);
      w[lo] = up ? got : w[lo];
      w[hi] = up ? w[hi] : got;
    }
  }
}

// write_output for 16-bit O with 16-byte aligned rows (the caller checks): each quad first
// transposes its rows' values (quad_transpose), so that a lane holds 8 consecutive columns and
// stores them at once; a warp store then covers 64 bytes, two whole sectors, of each of 8 rows,
// against 16 bytes (half a sector) per row for write_output. The persistent warp-specialized
// kernel, which cannot stage O through shared memory, spent 3.4 us of a window item there
// (dev/cuda_fwd/README.md, call 18).
template <typename T, bool kPatched = false>
__device__ __forceinline__ void write_output_vec16(float (&o)[T::kMTiles][T::kDTiles][4],
                                                   OnlineSoftmax<T>& sm, const FwdParams& p,
                                                   const WorkTile& w, float sl2, int warp_row0,
                                                   int lane) {
  static_assert(T::kDTiles % 4 == 0, "whole groups of four 8-column blocks");
  using Elem = typename T::Elem;
  const int64_t o_base = o_head_offset(p, w);
  const int q = lane & 3;
  for_each_row_end<T>(sm, p, w, sl2, warp_row0, lane, [&](int mt, int h, RowEnd end, int32_t i) {
    const bool inside = i < w.seqlen_q;  // the quad's row; every lane joins the shuffles
    const int32_t token = kPatched && inside ? p.order.token(i) : i;
    Elem* out = static_cast<Elem*>(p.o) + o_base + int64_t(w.q_start + token) * p.o_row_stride;
#pragma unroll
    for (int g = 0; g < T::kDTiles / 4; ++g) {
      // Columns 8 (4 g + k) + 2 q, + 1 for k = 0..3; after the transpose, lane q holds the
      // 8 columns of block 4 g + q, lane j's pair at word j.
      uint32_t words[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        words[k] = ptx::pack2<Elem>(o[mt][4 * g + k][2 * h] * end.inv,
                                    o[mt][4 * g + k][2 * h + 1] * end.inv);
      }
      quad_transpose(words, lane);
      if (inside) {  // st.global.v4 in PTX: from C++, ptxas split one of the stores in four
        asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(out + 8 * (4 * g + q)),
                     "r"(words[0]), "r"(words[1]), "r"(words[2]), "r"(words[3])
                     : "memory");
      }
    }
    if (inside && p.lse != nullptr && q == 0) lse_at(p, w, token) = end.lse;
  });
}

// Split-KV (params.h): this split's share as fp32 O normalized by its own sum, and its
// log-sum-exp in natural log (-inf when the share has no visible key; NaN stays NaN), at the
// logical row of split_combine.cu. The sinks are left to the combine.
template <typename T, bool kPatched = false>
__device__ __forceinline__ void write_split(float (&o)[T::kMTiles][T::kDTiles][4],
                                            OnlineSoftmax<T>& sm, const FwdParams& p,
                                            const WorkTile& w, float sl2, int warp_row0, int lane) {
  const int64_t sq = p.cu_seqlens_q == nullptr ? p.seqlen_q : 0;
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = quad_sum(sm.l[mt][h]);
      const float m = sm.m[mt][h];
      float inv = 0.0f, lse = -INFINITY;
      if (!(m == -INFINITY && !isnan(l))) {
        inv = ptx::rcp_approx(l);
        lse = (m * sl2 + log2f(l)) * kLn2;
      }
      const int r = warp_row0 + mt * 16 + (lane >> 2) + 8 * h;
      const int32_t i = w.q_tile * T::kBlockM + r;
      if (i >= w.seqlen_q) continue;
      const int32_t token = kPatched ? p.order.token(i) : i;
      const int64_t row = int64_t(w.split) * p.split_rows +
                          (int64_t(w.batch) * sq + w.q_start + token) * p.heads_q + w.head;
      float* out = p.split_o + row * T::kHeadDimV + 2 * (lane & 3);
#pragma unroll
      for (int dt = 0; dt < T::kDTiles; ++dt) {
        *reinterpret_cast<float2*>(out + dt * 8) =
            make_float2(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
      }
      if ((lane & 3) == 0) p.split_lse[row] = lse;
    }
  }
}

}  // namespace polyhead::cuda
