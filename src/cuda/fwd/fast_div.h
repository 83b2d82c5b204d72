// Division by a divisor fixed on the host, for the kernels' index arithmetic. Host and device
// code, no CUDA types.
#pragma once

#include <cstdint>

#include "core/mask_policy.h"  // POLYHEAD_HD

namespace polyhead::cuda {

// Division of values below 2^31 by a fixed divisor d >= 1 through a multiply-high and a shift
// (Granlund and Montgomery, "Division by invariant integers using multiplication", 1994):
// with s = ceil(log2 d) and m = floor(2^32 (2^s - d) / d) + 1, n / d = (mulhi(n, m) + n) >> s.
// The persistent kernels split a work-item index with it on every item, and the patch order
// (token_order.h) a patch index on every tile.
struct FastDiv {
  uint32_t d = 1, m = 1, s = 0;
  FastDiv() = default;
  explicit FastDiv(uint32_t divisor) : d(divisor) {
    while ((uint64_t(1) << s) < d) ++s;
    m = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << s) - d)) / d + 1);
  }
  // n / d for n < 2^31 (tests/unit/test_fast_div.cpp checks it on the host).
  POLYHEAD_HD uint32_t divide(uint32_t n) const {
#ifdef __CUDA_ARCH__
    return (__umulhi(n, m) + n) >> s;
#else
    return (uint32_t((uint64_t(n) * m) >> 32) + n) >> s;
#endif
  }
};

}  // namespace polyhead::cuda
