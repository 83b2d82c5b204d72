// Mask policies: plain structs with the element rule and per-row key ranges, usable from host
// C++ and from CUDA kernels alike, so the CPU backends and the GPU kernels evaluate the same
// rule (STYLE.md point 3). MaskRule (mask_rule.h) wraps them for the host-side BlockMap.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define POLYHEAD_HD __host__ __device__ __forceinline__
#else
#define POLYHEAD_HD inline
#endif

namespace polyhead::detail {

POLYHEAD_HD int64_t clamp64(int64_t x, int64_t lo, int64_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// Window (left, right) around the query's key position pos(i) = i + offset, where offset is
// Sk - Sq (bottom-right) or 0 (top-left); left/right = -1 leaves a side unbounded. Row i sees
// keys [lo(i), hi(i)); both ends are non-decreasing in i and move by at most one per row.
struct WindowPolicy {
  int64_t left = -1;
  int64_t right = -1;
  int64_t offset = 0;
  int64_t seqlen_k = 0;

  POLYHEAD_HD int64_t lo(int64_t i) const {
    return left < 0 ? 0 : clamp64(i + offset - left, 0, seqlen_k);
  }
  POLYHEAD_HD int64_t hi(int64_t i) const {
    return right < 0 ? seqlen_k : clamp64(i + offset + right + 1, 0, seqlen_k);
  }
  POLYHEAD_HD bool allowed(int64_t i, int64_t j) const { return j >= lo(i) && j < hi(i); }
};

}  // namespace polyhead::detail
