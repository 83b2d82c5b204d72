// The exact P V of a partial tile whose V holds Inf or NaN. The tensor-core product multiplies
// every p by every value, and a masked pair has p = 0, so 0 * Inf = NaN would reach rows that
// cannot see the key; the reference skips masked pairs. Such tiles (rare: the values must be
// non-finite) run this SIMT loop instead, which adds p * v over the visible pairs only, from
// the same rounded P the tensor cores would use.
#pragma once

#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

// Whether this thread's share of the V tile holds a non-finite element (16-bit exponent bits
// all set); the caller ORs it over the CTA.
template <typename T>
__device__ __forceinline__ bool v_tile_nonfinite(const uint16_t* sv, int tid) {
  constexpr uint16_t kExp = sizeof(typename T::Elem) == 2 && T::kIsBf16 ? 0x7f80 : 0x7c00;
  constexpr int kChunksPerRow = T::kHeadDimV / 8;
  bool bad = false;
  for (int c = tid; c < T::kBlockN * kChunksPerRow; c += T::kThreads) {
    const uint16_t* x = sv + (c / kChunksPerRow) * T::kRowV + (c % kChunksPerRow) * 8;
#pragma unroll
    for (int e = 0; e < 8; ++e) bad |= (x[e] & kExp) == kExp;
  }
  return bad;
}

template <typename T>
__device__ __forceinline__ void exact_pv(float (&o)[T::kMTiles][T::kDTiles][4],
                                         const float (&s)[T::kMTiles][T::kNTiles][4],
                                         const FwdParams& p, const WorkTile& w, KeyTileRef tile,
                                         typename T::Elem* sp, const typename T::Elem* sv,
                                         int warp_row0, int lane) {
  using Elem = typename T::Elem;
  static_assert(T::kBlockN <= 128, "two 64-bit row masks");
  Elem* rows = sp + warp_row0 * T::kBlockN;  // this warp's rows of P
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int nt = 0; nt < T::kNTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = mt * 16 + (lane >> 2) + 8 * (e >> 1), c = nt * 8 + 2 * (lane & 3) + (e & 1);
        rows[r * T::kBlockN + c] = Elem(s[mt][nt][e]);
      }
    }
  }
  // The visibility of this thread's rows as 128-bit masks (keys 0-63 in lo, 64-127 in hi).
  uint64_t lo[T::kMTiles][2], hi[T::kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = warp_row0 + mt * 16 + (lane >> 2) + 8 * h;
      const auto rule = row_rule<T::kBlockM, T::kBlockN>(p, tile, r, w.q_tile * T::kBlockM + r, w);
      lo[mt][h] = rule.words[0] | (uint64_t(rule.words[1]) << 32);
      hi[mt][h] = 0;
      if constexpr (T::kBlockN > 64) {
        hi[mt][h] = rule.words[2] | (uint64_t(rule.words[3]) << 32);
      }
    }
  }
  __syncwarp();
#pragma unroll 1
  for (int j = 0; j < T::kBlockN; ++j) {
    float v[T::kDTiles][2];
#pragma unroll
    for (int dt = 0; dt < T::kDTiles; ++dt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) v[dt][e] = float(sv[j * T::kRowV + dt * 8 + 2 * (lane & 3) + e]);
    }
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint64_t bits = j < 64 ? lo[mt][h] >> j : hi[mt][h] >> (j - 64);
        if (bits & 1u) {
          const float pj = float(rows[(mt * 16 + (lane >> 2) + 8 * h) * T::kBlockN + j]);
#pragma unroll
          for (int dt = 0; dt < T::kDTiles; ++dt) {
            o[mt][dt][2 * h] = fmaf(pj, v[dt][0], o[mt][dt][2 * h]);
            o[mt][dt][2 * h + 1] = fmaf(pj, v[dt][1], o[mt][dt][2 * h + 1]);
          }
        }
      }
    }
  }
  __syncwarp();
}

}  // namespace polyhead::cuda
