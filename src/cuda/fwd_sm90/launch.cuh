// Launch template of the Hopper forward kernel; each generated instance file
// (build/src/cuda/fwd_instances/fwd_sm90_<dtype>_<dqk>x<dv>.cu, compiled for sm_90a only)
// includes this and instantiates launch_fwd_sm90 for one configuration.
#pragma once

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.cuh"
#include "cuda/fwd_sm90/kernel.cuh"

namespace polyhead::cuda {

template <DType kDtype, int Dqk, int Dv>
void launch_fwd_sm90(const FwdParams& p, cudaStream_t stream) {
  using T = FwdSm90Traits<typename ElemOf<kDtype>::type, Dqk, Dv>;
  if (p.q_tiles == 0) return;
  const auto kernel = fwd_sm90_kernel<T>;
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  const dim3 grid(unsigned(p.q_tiles), unsigned(p.heads_q),
                  p.cu_seqlens_q ? 1u : unsigned(p.batch));
  kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(p);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_sm90_kernel");
}

}  // namespace polyhead::cuda
