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

// kPatched: rows are positions in patch order (token_order.h), written to their tokens.
template <typename T, bool kPatched = false>
__device__ __forceinline__ void write_output(float (&o)[T::kMTiles][T::kDTiles][4],
                                             OnlineSoftmax<T>& sm, const FwdParams& p,
                                             const WorkTile& w, float sl2, int warp_row0,
                                             int lane) {
  using Elem = typename T::Elem;
  const float sink = p.sinks ? p.sinks[w.head * p.sinks_stride] : -INFINITY;
  const int64_t o_base = int64_t(w.batch) * p.o_batch_stride + int64_t(w.head) * p.o_head_stride;
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const auto [inv, lse] = finish_row<T>(sm, mt, h, sink, sl2, p.sinks != nullptr);
      const int r = warp_row0 + mt * 16 + (lane >> 2) + 8 * h;
      const int32_t i = w.q_tile * T::kBlockM + r;
      if (i >= w.seqlen_q) continue;
      const int32_t token = kPatched ? p.order.token(i) : i;
      const int64_t row = o_base + int64_t(w.q_start + token) * p.o_row_stride;
      if (p.o_f32) {
        float* out = static_cast<float*>(p.o) + row + 2 * (lane & 3);
#pragma unroll
        for (int dt = 0; dt < T::kDTiles; ++dt) {
          *reinterpret_cast<float2*>(out + dt * 8) =
              make_float2(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
        }
      } else {
        Elem* out = static_cast<Elem*>(p.o) + row + 2 * (lane & 3);
#pragma unroll
        for (int dt = 0; dt < T::kDTiles; ++dt) {
          *reinterpret_cast<uint32_t*>(out + dt * 8) =
              ptx::pack2<Elem>(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
        }
      }
      if (p.lse != nullptr && (lane & 3) == 0) {
        lse_at(p, w, token) = lse;
      }
    }
  }
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
