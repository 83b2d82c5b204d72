// Launch of the warp-specialized Hopper kernel (fwd_ws/kernel.cuh): the TMA tensor maps of Q,
// K and V from the parameters, and the grid. Compiled for sm_90a only.
#include <cuda_runtime_api.h>

#include <algorithm>

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.h"
#include "cuda/fwd_ws/kernel.cuh"
#include "cuda/tma/tensor_map.h"

namespace polyhead::cuda {
namespace {

// [batch, rows, heads, D] of 16-bit elements as the 4-D tensor (D, heads, rows, batch), in
// boxes of 64 columns x 128 rows of one head.
CUtensorMap token_rows_map(const void* base, int64_t batch, int64_t rows, int64_t heads, int64_t d,
                           int64_t batch_stride, int64_t row_stride, int64_t head_stride) {
  TmaTensor t;
  t.base = base;
  t.rank = 4;
  t.dims = {uint64_t(d), uint64_t(heads), uint64_t(rows), uint64_t(batch), 0};
  // A dimension of extent 1 is never stepped: any valid stride will do.
  auto stride = [](int64_t elems, int64_t extent, uint64_t fallback) {
    return extent > 1 ? uint64_t(elems) * 2 : fallback;
  };
  const uint64_t row_bytes = uint64_t(d) * 2;
  t.strides = {stride(head_stride, heads, row_bytes), stride(row_stride, rows, row_bytes),
               stride(batch_stride, batch, row_bytes), 0};
  t.box = {64, 1, 128, 1, 0};
  return make_tensor_map_sw128(t);
}

template <typename T>
void launch(const FwdParams& p, cudaStream_t stream) {
  if (p.q_tiles == 0) return;
  const int64_t heads_kv = p.heads_q / p.group;
  const CUtensorMap tq = token_rows_map(p.q, p.batch, p.seqlen_q, p.heads_q, T::kHeadDimQK,
                                        p.q_batch_stride, p.q_row_stride, p.q_head_stride);
  const CUtensorMap tk = token_rows_map(p.k, p.batch, p.seqlen_k, heads_kv, T::kHeadDimQK,
                                        p.k_batch_stride, p.k_row_stride, p.k_head_stride);
  const CUtensorMap tv = token_rows_map(p.v, p.batch, p.seqlen_k, heads_kv, T::kHeadDimV,
                                        p.v_batch_stride, p.v_row_stride, p.v_head_stride);
  auto kernel = fwd_ws_kernel<T>;
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  const dim3 grid{unsigned(p.q_tiles), unsigned(p.heads_q), unsigned(p.batch)};
  kernel<<<grid, T::kCtaThreads, T::kSmemBytes, stream>>>(p, tq, tk, tv);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_kernel");
}

}  // namespace

void launch_fwd_ws(const FwdParams& p, DType dtype, cudaStream_t stream) {
  POLYHEAD_CHECK(dtype == DType::bf16 || dtype == DType::f16,
                 "cuda backend: the warp-specialized kernel takes bf16 or f16");
  if (dtype == DType::bf16) {
    launch<FwdWsTraits<__nv_bfloat16, 128>>(p, stream);
  } else {
    launch<FwdWsTraits<__half, 128>>(p, stream);
  }
}

}  // namespace polyhead::cuda
