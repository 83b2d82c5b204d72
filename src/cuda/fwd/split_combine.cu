// The combine of split-KV (split_combine.h). Row r's splits hold O_s (normalized by their own
// sums) and lse_s = log sum_j exp(score_j) over their keys, so with M = max(max_s lse_s, sink)
//   L = sum_s exp(lse_s - M) + exp(sink - M),  O = sum_s exp(lse_s - M) O_s / L,
//   lse = M + log L,
// which is the unsplit softmax. No visible key anywhere: O = 0 and lse = -inf (or the sink's
// logit), as the one-pass epilogue writes (epilogue.cuh). A NaN lse_s (a share whose visible
// scores include NaN) makes the row NaN, as it would without the split.
#include "cuda/fwd/split_combine.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_check.h"

namespace polyhead::cuda {
namespace {

template <typename Out>
__device__ __forceinline__ void store(Out* o, float x) {
  if constexpr (std::is_same_v<Out, float>) {
    *o = x;
  } else if constexpr (std::is_same_v<Out, __nv_bfloat16>) {
    *o = __float2bfloat16_rn(x);
  } else {
    *o = __float2half_rn(x);
  }
}

// One block per logical row, one thread per output column (blockDim.x = Dv).
template <typename Out>
__global__ void split_combine_kernel(const __grid_constant__ FwdParams p) {
  const int64_t row = blockIdx.x;
  const int c = int(threadIdx.x), dv = int(blockDim.x);
  const int32_t head = int32_t(row % p.heads_q);
  const int64_t bt = row / p.heads_q;  // batch * Sq + token (token alone for varlen)
  const bool varlen = p.cu_seqlens_q != nullptr;
  const int64_t batch = varlen ? 0 : bt / p.seqlen_q;
  const int64_t token = varlen ? bt : bt - batch * p.seqlen_q;
  const float sink = p.sinks ? p.sinks[head * p.sinks_stride] : -INFINITY;

  float m = sink;
  bool nan = false;
  for (int s = 0; s < p.kv_splits; ++s) {
    const float x = p.split_lse[s * p.split_rows + row];
    nan |= isnan(x);
    m = fmaxf(m, x);
  }
  float o = 0.0f, lse = -INFINITY;
  if (nan) {
    o = lse = NAN;
  } else if (m != -INFINITY) {
    float l = p.sinks ? expf(sink - m) : 0.0f;
    float acc = 0.0f;
    for (int s = 0; s < p.kv_splits; ++s) {
      const float x = p.split_lse[s * p.split_rows + row];
      if (x == -INFINITY) continue;  // an empty share adds nothing (its O is 0, never NaN)
      const float w = expf(x - m);
      l += w;
      acc += w * p.split_o[(s * p.split_rows + row) * dv + c];
    }
    o = acc / l;
    lse = m + logf(l);
  } else {
    lse = sink;  // only the sink (or nothing): O = 0
  }
  Out* out = static_cast<Out*>(p.o) + batch * p.o_batch_stride + token * p.o_row_stride +
             int64_t(head) * p.o_head_stride + c;
  store(out, o);
  if (p.lse != nullptr && c == 0) {
    p.lse[batch * p.lse_batch_stride + int64_t(head) * p.lse_head_stride +
          token * p.lse_row_stride] = lse;
  }
}

}  // namespace

void launch_split_combine(const FwdParams& p, int head_dim_v, DType out, cudaStream_t stream) {
  if (p.split_rows == 0) return;
  POLYHEAD_CHECK(head_dim_v <= 1024, "cuda backend: split-KV combine needs Dv <= 1024");
  const dim3 grid{unsigned(p.split_rows)}, block{unsigned(head_dim_v)};
  if (p.o_f32) {
    split_combine_kernel<float><<<grid, block, 0, stream>>>(p);
  } else if (out == DType::bf16) {
    split_combine_kernel<__nv_bfloat16><<<grid, block, 0, stream>>>(p);
  } else {
    split_combine_kernel<__half><<<grid, block, 0, stream>>>(p);
  }
  POLYHEAD_CUDA_CHECK_LAUNCH("split_combine_kernel");
}

}  // namespace polyhead::cuda
