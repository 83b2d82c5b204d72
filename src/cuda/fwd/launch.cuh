// Launch template of the tensor-core forward kernel; each generated instance file
// (build/src/cuda/fwd_instances/fwd_<dtype>_<dqk>x<dv>.cu) includes this and instantiates
// launch_fwd for one configuration.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/cuda_check.h"
#include "cuda/fwd/kernel.cuh"
#include "cuda/fwd/launch.h"

namespace polyhead::cuda {

template <DType kDtype>
struct ElemOf;
template <>
struct ElemOf<DType::f16> {
  using type = __half;
};
template <>
struct ElemOf<DType::bf16> {
  using type = __nv_bfloat16;
};

template <DType kDtype, int Dqk, int Dv>
void launch_fwd(const FwdParams& p, cudaStream_t stream) {
  using T = FwdKernelTraits<typename ElemOf<kDtype>::type, Dqk, Dv>;
  if (p.q_tiles == 0) return;
  const auto kernel = fwd_kernel<T>;
  if constexpr (T::kSmemBytes > 48 * 1024) {
    POLYHEAD_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  }
  const dim3 grid(unsigned(p.q_tiles), unsigned(p.heads_q),
                  p.cu_seqlens_q ? 1u : unsigned(p.batch));
  kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(p);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_kernel");
}

}  // namespace polyhead::cuda
