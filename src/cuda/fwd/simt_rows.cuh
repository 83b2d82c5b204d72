// Exact fp32 attention of 32 query rows of a work tile with plain FMA (no tensor cores), from
// key tiles of any shape (KeyTiles<kTileM, kTileN>) walked in chunks of 32 keys. Shared by the
// fp32 kernel (fwd_simt/, tiles of 32 x 32) and the warp-specialized kernel's exact pass over
// items whose partial tiles hold Inf/NaN in V (fwd_ws/exact_items.cuh, tiles of 128 x kBlockN).
// 128 threads, 4 warps of 8 rows:
//   scores:  lane c of a warp scores key c of the chunk against the warp's 8 rows (Q read as
//            broadcasts, K rows padded by one float so the 32 lanes hit 32 banks);
//   softmax: per row, warp shuffles for max and sum, accurate expf;
//   O += PV: lane l accumulates columns l, l + 32, ... of the warp's 8 rows, p broadcast by
//            shuffle; a masked pair is skipped (not multiplied by 0), so an Inf or NaN in a
//            value that a row cannot see never reaches it, as in the reference.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

inline constexpr int kSimtRows = 32;      // query rows per call
inline constexpr int kSimtThreads = 128;  // 4 warps x 8 rows
inline constexpr int kSimtMaxCols = 8;    // Dv <= 256: up to 8 output columns per lane

// Shared memory of simt_rows in floats: Q [32][dqk], K [32][dqk + 1], V [32][dv].
__host__ __device__ constexpr int simt_rows_smem_floats(int dqk, int dv) {
  return kSimtRows * dqk + 32 * (dqk + 1) + 32 * dv;
}

__device__ __forceinline__ float to_f32(float x) {
  return x;
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float to_f32(__half x) {
  return __half2float(x);
}

// Rows [r0, r0 + 32) of work tile w (tile height kTileM). Every thread of the CTA calls it with
// the same arguments; it ends with the rows' O and LSE written. A caller that calls it again
// synchronizes the CTA first (the buffers are reused). kPatched: rows and keys are
// positions in patch order (token_order.h), read from and written to their tokens.
template <typename Elem, int kTileM, int kTileN, bool kPatched = false>
__device__ void simt_rows(const FwdParams& p, const WorkTile& w, int r0, int dqk, int dv,
                          float* smem) {
  constexpr int kWarps = kSimtThreads / 32, kRows = kSimtRows / kWarps;
  static_assert(kTileN % 32 == 0 && kTileM % kSimtRows == 0, "32-key chunks, 32-row groups");
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int k_row = dqk + 1;
  float* sq = smem;                  // [32][dqk]
  float* sk = sq + kSimtRows * dqk;  // [32][dqk + 1]
  float* sv = sk + 32 * k_row;       // [32][dv]

  const int32_t i0 = w.q_tile * kTileM + r0;  // sequence position of the first row
  const TileOrigins<Elem> g(p, w, 0);
  const Elem *gq = g.q, *gk = g.k, *gv = g.v;
  auto token = [&](int32_t pos) { return kPatched ? p.order.token(pos) : pos; };

  for (int x = tid; x < kSimtRows * dqk; x += kSimtThreads) {
    const int r = x / dqk, d = x % dqk;
    sq[x] = i0 + r < w.seqlen_q ? to_f32(gq[int64_t(token(i0 + r)) * p.q_row_stride + d]) : 0.0f;
  }

  const KeyTiles<kTileM, kTileN> tiles(p, w);
  const float slope = p.alibi ? p.alibi[w.head * p.alibi_stride] : 0.0f;
  const int32_t pos_offset = p.top_left ? 0 : w.seqlen_k - w.seqlen_q;

  float m[kRows], l[kRows], o[kRows][kSimtMaxCols];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < kSimtMaxCols; ++c) o[r][c] = 0.0f;
  }

  for (int32_t n = 0; n < tiles.count; ++n) {
    const KeyTileRef tile = tiles[n];
    for (int c0 = 0; c0 < kTileN; c0 += 32) {
      const int32_t k0 = tile.index * kTileN + c0;
      if (k0 >= w.seqlen_k) break;  // the same for every thread
      __syncthreads();              // every warp is done with the previous K and V
      for (int x = tid; x < 32 * dqk; x += kSimtThreads) {
        const int c = x / dqk, d = x % dqk;
        sk[c * k_row + d] =
            k0 + c < w.seqlen_k ? to_f32(gk[int64_t(token(k0 + c)) * p.k_row_stride + d]) : 0.0f;
      }
      for (int x = tid; x < 32 * dv; x += kSimtThreads) {
        const int c = x / dv, d = x % dv;
        sv[x] =
            k0 + c < w.seqlen_k ? to_f32(gv[int64_t(token(k0 + c)) * p.v_row_stride + d]) : 0.0f;
      }
      __syncthreads();

      float s[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) s[r] = 0.0f;
      const float* qrow = sq + warp * kRows * dqk;
      for (int d = 0; d < dqk; ++d) {
        const float kd = sk[lane * k_row + d];
#pragma unroll
        for (int r = 0; r < kRows; ++r) s[r] = fmaf(qrow[r * dqk + d], kd, s[r]);
      }

      uint32_t visible[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int rt = r0 + warp * kRows + r;  // row within the work tile
        const int32_t i = w.q_tile * kTileM + rt;
        float x = s[r] * p.scale;
        if (p.softcap > 0.0f) x = p.softcap * tanhf(x / p.softcap);
        if (p.alibi) x -= slope * float(abs(i + pos_offset - (k0 + lane)));
        bool vis = k0 + lane < w.seqlen_k;
        if (vis && tile.slot != -1) {
          vis = row_rule<kTileM, kTileN>(p, tile, rt, i, w).visible(c0 + lane);
        }
        s[r] = vis ? x : -INFINITY;
        visible[r] = __ballot_sync(0xffffffffu, vis);

        float mx = s[r];
#pragma unroll
        for (int off = 16; off > 0; off /= 2) {
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        mx = fmaxf(mx, m[r]);
        const float m_sub = mx == -INFINITY ? 0.0f : mx;
        const float alpha = expf(m[r] - m_sub);
        m[r] = mx;
        s[r] = expf(s[r] - m_sub);
        l[r] = fmaf(l[r], alpha, s[r]);  // per-lane partial sum
#pragma unroll
        for (int c = 0; c < kSimtMaxCols; ++c) o[r][c] *= alpha;
      }

      for (int j = 0; j < 32; ++j) {
        float vj[kSimtMaxCols];
#pragma unroll
        for (int c = 0; c < kSimtMaxCols; ++c) {
          vj[c] = lane + 32 * c < dv ? sv[j * dv + lane + 32 * c] : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float pj = __shfl_sync(0xffffffffu, s[r], j);
          if ((visible[r] >> j) & 1u) {
#pragma unroll
            for (int c = 0; c < kSimtMaxCols; ++c) o[r][c] = fmaf(pj, vj[c], o[r][c]);
          }
        }
      }
    }
  }

  const float sink = head_sink(p, w);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    float sum = l[r];
#pragma unroll
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const int32_t i = i0 + warp * kRows + r;
    if (i >= w.seqlen_q) continue;
    float inv, lse;
    if (m[r] == -INFINITY && !isnan(sum)) {  // all-NaN rows keep m = -inf but sum = NaN
      inv = 0.0f;
      lse = sink;
    } else {
      float mm = m[r], o_scale = 1.0f;
      if (p.sinks) {
        const float mf = fmaxf(mm, sink);
        o_scale = expf(mm - mf);
        sum = fmaf(sum, o_scale, expf(sink - mf));
        mm = mf;
      }
      inv = o_scale / sum;
      lse = mm + logf(sum);
    }
    const int64_t row = int64_t(w.batch) * p.o_batch_stride +
                        int64_t(w.q_start + token(i)) * p.o_row_stride +
                        int64_t(w.head) * p.o_head_stride;
#pragma unroll
    for (int c = 0; c < kSimtMaxCols; ++c) {
      if (lane + 32 * c >= dv) continue;
      const float y = o[r][c] * inv;
      if (p.o_f32) {
        static_cast<float*>(p.o)[row + lane + 32 * c] = y;
      } else {
        static_cast<Elem*>(p.o)[row + lane + 32 * c] = Elem(y);
      }
    }
    if (p.lse != nullptr && lane == 0) {
      lse_at(p, w, token(i)) = lse;
    }
  }
}

}  // namespace polyhead::cuda
