// The exact pass after the persistent warp-specialized kernel (fwd_ws/persistent.cuh): the
// consumer warpgroups' rows of the work items it listed (partial tiles whose V held Inf/NaN, so the
// tensor cores' 0 * Inf may have reached rows that cannot see the key) are computed again with fp32
// FMA, skipping masked pairs (fwd/simt_rows.cuh), over the same key tiles, and their O and LSE
// overwritten. The list is usually empty: the CTAs read its length and leave.
#pragma once

#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/schedule.h"
#include "cuda/fwd/simt_rows.cuh"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

template <typename T, bool kPatched>
__global__ void __launch_bounds__(kSimtThreads)
    fwd_ws_exact_items_kernel(const __grid_constant__ FwdParams p) {
  extern __shared__ float smem_f[];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Launched as a programmatic dependent of the persistent kernel (launch.cuh): the list is
  // complete and visible once that grid has completed.
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  // An entry is one consumer warpgroup's rows of an item: item * kConsumers + its index.
  constexpr int kConsumers = T::Tile::kConsumers;
  constexpr int kRows = T::kBlockM / kConsumers;
  constexpr int64_t kGroups = kRows / kSimtRows;  // 32-row groups per entry
  static_assert(kRows % kSimtRows == 0, "whole 32-row groups per consumer warpgroup");
  const int64_t jobs = int64_t(*p.redo_count) * kGroups;
  for (int64_t e = blockIdx.x; e < jobs; e += gridDim.x) {
    const uint32_t entry = p.redo_items[e / kGroups];
    WorkTile w;
    if (!resolve_item<T::kBlockM>(p, int32_t(entry / kConsumers), w)) continue;
    const int r0 = int(entry % kConsumers) * kRows + int(e % kGroups) * kSimtRows;
    simt_rows<typename T::Elem, T::kBlockM, T::kBlockN, kPatched>(p, w, r0, T::kHeadDimQK,
                                                                  T::kHeadDimV, smem_f);
    __syncthreads();  // every warp is done with the buffers before the next rows
  }
}

}  // namespace polyhead::cuda
