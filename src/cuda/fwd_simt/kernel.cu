// The fp32 forward kernel: plain fp32 FMA (no tensor cores), so that fp32 inputs meet
// DESIGN.md's 1e-5 relative-L2 tolerance (tf32 tensor cores round operands to 10 mantissa
// bits, about 5e-4). Same work split, key-tile sources and masks as the tensor-core kernel
// (fwd/work.cuh), its own tile of 32 query rows x 32 keys:
//   scores:  lane c of a warp scores key c against the warp's 8 rows (Q read as broadcasts,
//            K rows padded by one float so the 32 lanes hit 32 banks);
//   softmax: per row, warp shuffles for max and sum, accurate expf;
//   O += PV: lane l accumulates columns l, l + 32, ... of the warp's 8 rows, p broadcast by
//            shuffle; a masked pair is skipped (not multiplied by 0), so an Inf or NaN in a
//            value that a row cannot see never reaches it, as in the reference.
#include <cmath>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.h"
#include "cuda/fwd/params.h"
#include "cuda/fwd/tile_size.h"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {
namespace {

constexpr int kM = kSimtBlockM, kN = kSimtBlockN, kWarps = kSimtWarps;
constexpr int kRows = kM / kWarps;  // query rows per warp
constexpr int kMaxCols = 8;         // Dv <= 256: up to 8 output columns per lane
static_assert(kN == 32, "one key per lane");

__global__ void __launch_bounds__(kWarps * 32)
    fwd_simt_kernel(const __grid_constant__ FwdParams p, int dqk, int dv) {
  extern __shared__ float smem_f[];
  WorkTile w;
  if (!resolve_work<kM>(p, w)) return;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int k_row = dqk + 1;
  float* sq = smem_f;           // [kM][dqk]
  float* sk = sq + kM * dqk;    // [kN][dqk + 1]
  float* sv = sk + kN * k_row;  // [kN][dv]

  const int32_t i0 = w.q_tile * kM;
  const TileOrigins<float> g(p, w, i0);
  const float *gq = g.q, *gk = g.k, *gv = g.v;

  for (int x = tid; x < kM * dqk; x += kWarps * 32) {
    const int r = x / dqk, d = x % dqk;
    sq[x] = i0 + r < w.seqlen_q ? gq[int64_t(r) * p.q_row_stride + d] : 0.0f;
  }

  const KeyTiles<kM, kN> tiles(p, w);
  const float slope = p.alibi ? p.alibi[w.head * p.alibi_stride] : 0.0f;
  const int32_t pos_offset = p.top_left ? 0 : w.seqlen_k - w.seqlen_q;

  float m[kRows], l[kRows], o[kRows][kMaxCols];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxCols; ++c) o[r][c] = 0.0f;
  }

  for (int32_t n = 0; n < tiles.count; ++n) {
    const KeyTileRef tile = tiles[n];
    const int32_t k0 = tile.index * kN;
    __syncthreads();  // every warp is done with the previous K and V
    for (int x = tid; x < kN * dqk; x += kWarps * 32) {
      const int c = x / dqk, d = x % dqk;
      sk[c * k_row + d] = k0 + c < w.seqlen_k ? gk[int64_t(k0 + c) * p.k_row_stride + d] : 0.0f;
    }
    for (int x = tid; x < kN * dv; x += kWarps * 32) {
      const int c = x / dv, d = x % dv;
      sv[x] = k0 + c < w.seqlen_k ? gv[int64_t(k0 + c) * p.v_row_stride + d] : 0.0f;
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
      const int rt = warp * kRows + r;  // row within the tile
      const int32_t i = i0 + rt;
      float x = s[r] * p.scale;
      if (p.softcap > 0.0f) x = p.softcap * tanhf(x / p.softcap);
      if (p.alibi) x -= slope * float(abs(i + pos_offset - (k0 + lane)));
      bool vis = true;
      if (tile.slot != -1) vis = row_rule<kM, kN>(p, tile, rt, i, w).visible(lane);
      s[r] = vis ? x : -INFINITY;
      visible[r] = __ballot_sync(0xffffffffu, vis);

      float mx = s[r];
#pragma unroll
      for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      mx = fmaxf(mx, m[r]);
      const float m_sub = mx == -INFINITY ? 0.0f : mx;
      const float alpha = expf(m[r] - m_sub);
      m[r] = mx;
      s[r] = expf(s[r] - m_sub);
      l[r] = fmaf(l[r], alpha, s[r]);  // per-lane partial sum
#pragma unroll
      for (int c = 0; c < kMaxCols; ++c) o[r][c] *= alpha;
    }

    for (int j = 0; j < kN; ++j) {
      float vj[kMaxCols];
#pragma unroll
      for (int c = 0; c < kMaxCols; ++c) {
        vj[c] = lane + 32 * c < dv ? sv[j * dv + lane + 32 * c] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float pj = __shfl_sync(0xffffffffu, s[r], j);
        if ((visible[r] >> j) & 1u) {
#pragma unroll
          for (int c = 0; c < kMaxCols; ++c) o[r][c] = fmaf(pj, vj[c], o[r][c]);
        }
      }
    }
  }

  const float sink = p.sinks ? p.sinks[w.head * p.sinks_stride] : -INFINITY;
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
    float* out = static_cast<float*>(p.o) + int64_t(w.batch) * p.o_batch_stride +
                 int64_t(w.q_start + i) * p.o_row_stride + int64_t(w.head) * p.o_head_stride;
#pragma unroll
    for (int c = 0; c < kMaxCols; ++c) {
      if (lane + 32 * c < dv) out[lane + 32 * c] = o[r][c] * inv;
    }
    if (p.lse != nullptr && lane == 0) {
      p.lse[int64_t(w.batch) * p.lse_batch_stride + int64_t(w.head) * p.lse_head_stride +
            int64_t(w.q_start + i) * p.lse_row_stride] = lse;
    }
  }
}

}  // namespace

void launch_fwd_simt_f32(const FwdParams& p, int head_dim_qk, int head_dim_v, cudaStream_t stream) {
  if (p.q_tiles == 0) return;
  const size_t smem =
      sizeof(float) * size_t(kM * head_dim_qk + kN * (head_dim_qk + 1) + kN * head_dim_v);
  if (smem > 48 * 1024) {
    POLYHEAD_CUDA_CHECK(cudaFuncSetAttribute(
        fwd_simt_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  }
  const dim3 grid(unsigned(p.q_tiles), unsigned(p.heads_q),
                  p.cu_seqlens_q ? 1u : unsigned(p.batch));
  fwd_simt_kernel<<<grid, kWarps * 32, smem, stream>>>(p, head_dim_qk, head_dim_v);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_simt_kernel");
}

}  // namespace polyhead::cuda
