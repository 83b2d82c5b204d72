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
    if (left < 0 || left >= i + offset) return 0;  // no overflow for left near INT64_MAX
    return clamp64(i + offset - left, 0, seqlen_k);
  }
  POLYHEAD_HD int64_t hi(int64_t i) const {
    // A side reaching past the last key is unbounded; comparing first keeps i + right from
    // overflowing for windows as wide as INT64_MAX.
    if (right < 0 || right >= seqlen_k - (i + offset)) return seqlen_k;
    return clamp64(i + offset + right + 1, 0, seqlen_k);
  }
  POLYHEAD_HD bool allowed(int64_t i, int64_t j) const { return j >= lo(i) && j < hi(i); }
};

}  // namespace polyhead::detail

namespace polyhead::detail {

// One dimension of a neighborhood (NATTEN/GNA rule, kernels.md section 8). Query coordinate x
// sees the key coordinates first(x), first(x) + dilation, ..., last(x) (same residue modulo the
// dilation; empty when first > last).
struct NeighborhoodDim {
  int64_t len = 1, kernel = 1, dilation = 1, stride = 1;
  bool causal = false;

  // Group-coordinate window [lo, hi] of query coordinate x, and its residue.
  POLYHEAD_HD void window(int64_t x, int64_t* lo, int64_t* hi, int64_t* residue) const {
    const int64_t g = x % dilation, xq = x / dilation;
    const int64_t group_len = len / dilation + (g < len % dilation ? 1 : 0);
    *residue = g;
    if (!causal) {
      const int64_t left = kernel / 2, right = kernel / 2 + kernel % 2 - 1;
      int64_t leader = (xq / stride) * stride + stride / 2;
      leader = leader < group_len - 1 ? leader : group_len - 1;
      const int64_t c = clamp64(leader, left, group_len - 1 - right);
      *lo = c - left;
      *hi = c + right;
    } else {
      int64_t leader = (xq / stride) * stride + stride - 1;
      leader = leader < group_len - 1 ? leader : group_len - 1;
      const int64_t first = leader - kernel + 1;
      *lo = first > 0 ? first : 0;
      *hi = xq;
    }
  }
  POLYHEAD_HD bool allowed(int64_t x, int64_t y) const {
    int64_t lo, hi, g;
    window(x, &lo, &hi, &g);
    if (y % dilation != g) return false;
    const int64_t yq = y / dilation;
    return yq >= lo && yq <= hi;
  }
  // Key coordinates of the window: first, last (inclusive; step = dilation); count >= 0.
  POLYHEAD_HD int64_t keys(int64_t x, int64_t* first, int64_t* last) const {
    int64_t lo, hi, g;
    window(x, &lo, &hi, &g);
    *first = lo * dilation + g;
    *last = hi * dilation + g;
    return hi >= lo ? hi - lo + 1 : 0;
  }
};

// Neighborhood attention over a row-major grid of up to three dimensions.
struct NeighborhoodPolicy {
  int rank = 1;
  NeighborhoodDim dim[3];

  POLYHEAD_HD void coords(int64_t t, int64_t* c) const {
    for (int d = rank - 1; d >= 0; --d) {
      c[d] = t % dim[d].len;
      t /= dim[d].len;
    }
  }
  POLYHEAD_HD bool allowed(int64_t i, int64_t j) const {
    int64_t ci[3], cj[3];
    coords(i, ci);
    coords(j, cj);
    for (int d = 0; d < rank; ++d) {
      if (!dim[d].allowed(ci[d], cj[d])) return false;
    }
    return true;
  }
};

// S2-Attention (kernels.md section 7) for one kv head `group` (already mapped for homo_heads):
// causal at token level, key blocks by the local + vertical-stride rule.
struct StridedPolicy {
  int64_t block = 64, local = 4, vstride = 4, step = 1, offset = 0;
  int64_t pos_offset = 0;  // pos(i) = i + pos_offset
  bool dense = false;      // this head is one of the dense heads
  int64_t group = 0;

  POLYHEAD_HD bool block_allowed(int64_t qb, int64_t kb) const {
    if (kb > qb) return false;
    if (qb - kb < local || dense) return true;
    return (kb + group * step + offset) % vstride == 0;
  }
  POLYHEAD_HD bool allowed(int64_t i, int64_t j) const {
    const int64_t p = i + pos_offset;
    if (p < 0 || j > p) return false;
    return block_allowed(p / block, j / block);
  }
};

}  // namespace polyhead::detail
