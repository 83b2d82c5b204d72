// Launch template of the Hopper forward kernel; each generated instance file
// (build/src/cuda/fwd_instances/fwd_sm90_<dtype>_<dqk>x<dv>.cu, compiled for sm_90a only)
// includes this and instantiates launch_fwd_sm90 for one configuration.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.cuh"
#include "cuda/fwd_sm90/kernel.cuh"

namespace polyhead::cuda {

template <DType kDtype, int Dqk, int Dv>
void launch_fwd_sm90(const FwdParams& p, cudaStream_t stream) {
  using T = FwdSm90Traits<typename ElemOf<kDtype>::type, Dqk, Dv>;
  if (p.q_tiles == 0) return;
  auto kernel = fwd_sm90_kernel<T, false, false>;
  // The dispatcher never combines patch order with split-KV.
  POLYHEAD_CHECK(!p.order.patched || p.kv_splits == 1,
                 "cuda backend: patch order and split-KV are not combined");
  if (p.kv_splits > 1) kernel = fwd_sm90_kernel<T, false, true>;
  if (p.order.patched) {
    // Patch order needs 128-row tiles (one patch per query tile) and is instantiated up to
    // Dqk 192 (at 256 its loads spill 220 bytes); the dispatcher checks both.
    if constexpr (T::kBlockM == 128 && T::kHeadDimQK <= 192) {
      kernel = fwd_sm90_kernel<T, true, false>;
    } else {
      POLYHEAD_CHECK(false, "cuda backend: patch order needs 128-row tiles and Dqk <= 192");
    }
  }
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  // Persistent: as many CTAs as fit on the SMs at once, each walking its share (fewer when
  // there are fewer work items). The traits size registers (__launch_bounds__) and shared
  // memory (kSmemBudget) for kMinBlocksPerSm CTAs per SM, one or two.
  int device = 0, sms = 0;
  POLYHEAD_CUDA_CHECK(cudaGetDevice(&device));
  POLYHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int resident = sms * T::kMinBlocksPerSm;
  const int64_t items = p.work_items;
  const int64_t cap = p.max_ctas < 0   ? std::numeric_limits<int32_t>::max()
                      : p.max_ctas > 0 ? std::min(resident, p.max_ctas)
                                       : resident;
  const int64_t ctas = std::min(items, cap);
  const dim3 grid{unsigned(ctas)};
  kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(p);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_sm90_kernel");
}

}  // namespace polyhead::cuda
