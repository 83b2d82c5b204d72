// Launch of the warp-specialized Hopper kernel (fwd_ws/kernel.cuh): the TMA tensor maps of Q,
// K and V from the parameters, and the grid. Each generated instance file
// (build/src/cuda/fwd_instances/fwd_ws_<dtype>_<dqk>x<dv>.cu, compiled for sm_90a only)
// includes this and instantiates launch_fwd_ws for one configuration.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.cuh"
#include "cuda/fwd_ws/exact_items.cuh"
#include "cuda/fwd_ws/kernel.cuh"
#include "cuda/fwd_ws/persistent.cuh"
#include "cuda/tma/tensor_map.h"

namespace polyhead::cuda {

// [batch, rows, heads, d] of 16-bit elements as the 4-D tensor (d, heads, rows, batch), in
// boxes of 64 columns x box_rows rows of one head. Rows past `rows` read as zeros.
inline CUtensorMap token_rows_map(const void* base, int64_t batch, int64_t rows, int64_t heads,
                                  int64_t d, int64_t batch_stride, int64_t row_stride,
                                  int64_t head_stride, int box_rows) {
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
  t.box = {64, 1, uint32_t(box_rows), 1, 0};
  return make_tensor_map_sw128(t);
}

template <DType kDtype, int Dqk, int Dv>
void launch_fwd_ws(const FwdParams& p, cudaStream_t stream) {
  using T = FwdWsTraits<typename ElemOf<kDtype>::type, Dqk, Dv>;
  if (p.q_tiles == 0) return;
  // Varlen: one "batch" of all tokens (dimension 1 of the tensors); rows past a sequence's
  // end belong to the next one, and the kernel masks or drops them as for a batch.
  const int64_t heads_kv = p.heads_q / p.group;
  const int64_t batch = p.cu_seqlens_q != nullptr ? 1 : p.batch;
  const CUtensorMap tq = token_rows_map(p.q, batch, p.rows_q, p.heads_q, Dqk, p.q_batch_stride,
                                        p.q_row_stride, p.q_head_stride, 128);
  const CUtensorMap tk = token_rows_map(p.k, batch, p.rows_k, heads_kv, Dqk, p.k_batch_stride,
                                        p.k_row_stride, p.k_head_stride, T::kBlockN);
  const CUtensorMap tv = token_rows_map(p.v, batch, p.rows_k, heads_kv, Dv, p.v_batch_stride,
                                        p.v_row_stride, p.v_head_stride, T::kBlockN);
  if (p.redo_count == nullptr) {  // one CTA per item
    auto kernel = fwd_ws_kernel<T>;
    POLYHEAD_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
    const dim3 grid{unsigned(p.q_tiles), unsigned(p.heads_q), unsigned(batch)};
    kernel<<<grid, T::kCtaThreads, T::kSmemBytes, stream>>>(p, tq, tk, tv);
    POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_kernel");
    return;
  }
  // Persistent: one CTA per SM (fewer with fewer items, or max_ctas), then the exact pass over
  // the items it listed, with at most two CTAs per SM of 128 threads.
  int device = 0, sms = 0;
  POLYHEAD_CUDA_CHECK(cudaGetDevice(&device));
  POLYHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t cap = p.max_ctas > 0 ? std::min(sms, p.max_ctas) : sms;
  const unsigned ctas = unsigned(std::min<int64_t>(p.work_items, cap));
  if (ctas == 0) return;
  auto kernel = fwd_ws_persistent_kernel<T>;
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  kernel<<<ctas, T::kCtaThreads, T::kSmemBytes, stream>>>(p, tq, tk, tv);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_persistent_kernel");
  auto exact = fwd_ws_exact_items_kernel<T>;
  const int smem = int(sizeof(float)) * simt_rows_smem_floats(Dqk, Dv);
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(exact, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  exact<<<unsigned(2 * sms), kSimtThreads, smem, stream>>>(p);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_exact_items_kernel");
}

}  // namespace polyhead::cuda
