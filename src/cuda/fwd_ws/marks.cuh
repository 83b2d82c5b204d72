// The timeline marks of the warp-specialized forward kernels (fwd/timeline.h): phase
// timestamps, wait and phase counts, and the last warp's exit, written into the CTA's (or the
// persistent form's work item's) record. They compile to nothing unless the build defines
// POLYHEAD_CUDA_TIMELINE (scripts/gpu-timeline).
#pragma once

#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd/timeline.h"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

#if POLYHEAD_CUDA_TIMELINE
// This CTA's record: its linear block index.
__device__ __forceinline__ uint64_t timeline_cta_record() {
  return blockIdx.x + uint64_t(gridDim.x) * (blockIdx.y + uint64_t(gridDim.y) * blockIdx.z);
}
#endif

// A phase timestamp taken earlier (timeline_clock), or a count, into record `record`: by
// default this CTA's (its linear block index), in the persistent kernel the work item's. Used
// for the CTA's start, which is taken at its first instruction and written after the CTA
// barrier, so that no global store of the marks precedes the mbarrier initialization's release
// fence (with none, the barrier still took about 540 cycles: timeline call 69).
__device__ __forceinline__ void timeline_mark_at([[maybe_unused]] const FwdParams& p,
                                                 [[maybe_unused]] int field,
                                                 [[maybe_unused]] uint64_t at,
                                                 [[maybe_unused]] int64_t record = -1) {
#if POLYHEAD_CUDA_TIMELINE
  if (p.timeline == nullptr) return;
  const uint64_t b = record >= 0 ? uint64_t(record) : timeline_cta_record();
  p.timeline[b * kTimelineFields + field] = at;
#endif
}

// A phase timestamp (timeline.h) now, into record `record` (timeline_mark_at). The counts
// (kTlTiles on) record `count`. Nothing unless built with POLYHEAD_CUDA_TIMELINE.
__device__ __forceinline__ void timeline_mark([[maybe_unused]] const FwdParams& p,
                                              [[maybe_unused]] int field,
                                              [[maybe_unused]] int32_t count = 0,
                                              [[maybe_unused]] int64_t record = -1) {
#if POLYHEAD_CUDA_TIMELINE
  if (p.timeline == nullptr) return;
  uint64_t v = field >= kTlTiles ? uint64_t(count) : uint64_t(clock64());
  if (field == kTlSm) {
    uint32_t sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    v = sm + 1ull;
  }
  timeline_mark_at(p, field, v, record);
#endif
}

// Timeline builds: the SM's clock now, for a mark that timeline_mark_at writes later; 0 and no
// code otherwise.
__device__ __forceinline__ uint64_t timeline_clock() {
#if POLYHEAD_CUDA_TIMELINE
  return clock64();
#else
  return 0;
#endif
}

// Timeline builds: this warp's exit into the CTA's kTlExit, which ends up holding the last
// warp's (atomicMax; lane 0 of each warp, just before it returns), as clock << 4 | the warp's
// index (timeline.h). The gap from it to the SM's next CTA is the launch alone; from the
// consumers' end marks, also whatever the warps do after them.
__device__ __forceinline__ void timeline_exit([[maybe_unused]] const FwdParams& p) {
#if POLYHEAD_CUDA_TIMELINE
  if (p.timeline == nullptr || (threadIdx.x & 31) != 0) return;
  const uint64_t v = uint64_t(clock64()) << kTlExitWarpBits | (threadIdx.x / 32);
  atomicMax(p.timeline + timeline_cta_record() * kTimelineFields + kTlExit,
            static_cast<unsigned long long>(v));
#endif
}

// Timeline builds: the item's wait or phase count i (consumer.cuh, ring_wait and PhaseClock)
// into its record as field kTlKvWait0 + i, and the count back to zero for the next item.
template <typename Ring>
__device__ __forceinline__ void timeline_tally([[maybe_unused]] const FwdParams& p,
                                               [[maybe_unused]] const Ring& ring,
                                               [[maybe_unused]] int i,
                                               [[maybe_unused]] int64_t record = -1) {
#if POLYHEAD_CUDA_TIMELINE
  const uint64_t v = ptx::ld_shared_u64(ring.tally(i));
  ptx::st_shared_u64(ring.tally(i), 0);
  timeline_mark(p, kTlKvWait0 + i, int32_t(v), record);
#endif
}

// Timeline builds, by every lane of the first warp of consumer warpgroup cw: lane 0 writes its
// end mark, and lanes 0 to kTlPhases copy one of its wait and phase counts each into record
// `record` (timeline_mark). One thread copying the 9 counts in turn took about 1.0k cycles after
// the end mark, which the timeline then showed as a gap between CTAs (calls 64-65).
template <typename Ring>
__device__ __forceinline__ void timeline_consumer_end(const FwdParams& p, const Ring& ring, int cw,
                                                      int lane, int64_t record = -1) {
  if (lane == 0) timeline_mark(p, kTlEnd0 + 3 * cw, 0, record);
  if (lane <= kTlPhases) {
    timeline_tally(p, ring, lane == 0 ? cw : phase_tally(cw, lane - 1), record);
  }
}

}  // namespace polyhead::cuda
