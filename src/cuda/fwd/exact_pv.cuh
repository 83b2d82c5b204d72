// The exact P V of a partial tile whose V holds Inf or NaN. The tensor-core product multiplies
// every p by every value, and a masked pair has p = 0, so 0 * Inf = NaN would reach rows that
// cannot see the key; the reference skips masked pairs. Such tiles (rare: the values must be
// non-finite) run this SIMT loop instead, which adds p * v over the visible pairs only, from
// the same rounded P the tensor cores would use.
#pragma once

#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

// Whether this thread's share of the V tile holds a non-finite element (16-bit exponent bits
// all set); the caller ORs it over the kThreads threads that share the test (the CTA, or one
// warpgroup of the warp-specialized kernel). The share is chunks tid + k * kThreads, exactly the
// chunks every tile load (load_tile, load_tile_sw128 and its ordered form) has this thread copy,
// so the test may run after the thread's own cp.async wait, before any barrier.
template <typename T, int kThreads = T::kThreads>
__device__ __forceinline__ bool v_tile_nonfinite(const uint16_t* sv, int tid) {
  constexpr uint32_t kExp = T::kIsBf16 ? 0x7f80u : 0x7c00u;
  constexpr uint32_t kExp2 = kExp | (kExp << 16);
  constexpr int kChunksPerRow = T::kHeadDimV / 8;
  uint32_t bad = 0;
  for (int c = tid; c < T::kBlockN * kChunksPerRow; c += kThreads) {
    // 8 consecutive columns stay consecutive in every layout (padded rows or swizzled): one
    // 16-byte load, and both halves of each word tested at once.
    const uint4 x = *reinterpret_cast<const uint4*>(
        sv + T::v_index(c / kChunksPerRow, (c % kChunksPerRow) * 8));
    bad |= __vcmpeq2(x.x & kExp2, kExp2) | __vcmpeq2(x.y & kExp2, kExp2) |
           __vcmpeq2(x.z & kExp2, kExp2) | __vcmpeq2(x.w & kExp2, kExp2);
  }
  return bad != 0;
}

// The barrier that makes a key tile's V visible to every warp. On a partial tile it also ORs
// each thread's test of the chunks it copied itself into `exact` (the exact path must run);
// a full tile leaves `exact` as it is.
template <typename T>
__device__ __forceinline__ void barrier_v_nonfinite(KeyTileRef tile, const uint16_t* sv, int tid,
                                                    bool& exact) {
  if (tile.slot == -1) {
    __syncthreads();
  } else {
    exact = __syncthreads_or(v_tile_nonfinite<T>(sv, tid));
  }
}

// `sp`: the P scratch, kBlockN columns a row; this warp's rows start at row warp_row0 - sp_row0
// (a scratch that holds only some warps' rows starts at row sp_row0 of the tile).
template <typename T>
__device__ __forceinline__ void exact_pv(float (&o)[T::kMTiles][T::kDTiles][4],
                                         const float (&s)[T::kMTiles][T::kNTiles][4],
                                         const FwdParams& p, const WorkTile& w, KeyTileRef tile,
                                         typename T::Elem* sp, const typename T::Elem* sv,
                                         int warp_row0, int lane, int sp_row0 = 0) {
  using Elem = typename T::Elem;
  static_assert(T::kBlockN <= 128, "two 64-bit row masks");
  Elem* rows = sp + (warp_row0 - sp_row0) * T::kBlockN;  // this warp's rows of P
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
    // Columns 2t and 2t + 1 are adjacent in every V layout: one 32-bit load per pair (this
    // also keeps the index arithmetic to even columns, where the swizzled layout of the wgmma
    // kernel was read wrongly for odd ones in the D = 64 instantiation).
    float v[T::kDTiles][2];
#pragma unroll
    for (int dt = 0; dt < T::kDTiles; ++dt) {
      const float2 pair = ptx::unpack2<Elem>(
          *reinterpret_cast<const uint32_t*>(sv + T::v_index(j, dt * 8 + 2 * (lane & 3))));
      v[dt][0] = pair.x;
      v[dt][1] = pair.y;
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
