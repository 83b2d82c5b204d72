// Score transforms, partial-tile masking and the online softmax of the tensor-core forward
// kernel, on the mma accumulator layout: thread (warp w, lane = 4 g + t) holds, for m16 tile
// mt and n8 tile nt, element e of rows 16 mt + g + 8 (e / 2) and key columns 8 nt + 2 t +
// (e % 2).
//
// Online-softmax invariant, per query row after the key tiles seen so far (in log2 units,
// u = sl2 * s with sl2 = scale * log2(e) on the plain path, 1 after a transform):
//   m = max_j s_j,  l = sum_j 2^(u_j - sl2 m),  O = sum_j 2^(u_j - sl2 m) v_j;
// a tile with a larger max m' rescales l and O by 2^(sl2 (m - m')) before adding its terms.
// A row that has seen only masked keys keeps m = -inf and subtracts 0 instead, so its
// probabilities are exactly 0 and never NaN.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda/fwd/params.h"
#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

// Rewrites raw dot products into log2-unit logits: scale, softcap, ALiBi (DESIGN.md 2).
template <typename T>
__device__ __forceinline__ void transform_scores(float (&s)[T::kMTiles][T::kNTiles][4],
                                                 const FwdParams& p, const WorkTile& w, int32_t k0,
                                                 int warp_row0, int lane) {
  const float softcap = p.softcap, softcap_inv = p.softcap_inv;
  const float slope = p.alibi ? p.alibi[w.head * p.alibi_stride] : 0.0f;
  const int32_t pos_offset = p.top_left ? 0 : w.seqlen_k - w.seqlen_q;
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int32_t pos =
          w.q_tile * T::kBlockM + warp_row0 + mt * 16 + (lane >> 2) + 8 * (e >> 1) + pos_offset;
#pragma unroll
      for (int nt = 0; nt < T::kNTiles; ++nt) {
        float x = s[mt][nt][e] * p.scale;
        if (softcap > 0.0f) x = softcap * tanhf(x * softcap_inv);
        if (p.alibi) {
          const int32_t j = k0 + nt * 8 + 2 * (lane & 3) + (e & 1);
          x -= slope * float(abs(pos - j));
        }
        s[mt][nt][e] = x * kLog2e;
      }
    }
  }
}

// Sets the scores of one of a thread's rows (h: r or r + 8 of its m16 tile) that `rule` does not
// show to -inf.
template <typename T>
__device__ __forceinline__ void mask_row(float (&s)[T::kNTiles][4], int h,
                                         const RowRule<T::kBlockN>& rule, int lane) {
#pragma unroll
  for (int nt = 0; nt < T::kNTiles; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (!rule.visible(nt * 8 + 2 * (lane & 3) + e)) s[nt][2 * h + e] = -INFINITY;
    }
  }
}

// Sets the scores of invisible (row, key) pairs of a partial tile to -inf.
template <typename T>
__device__ __forceinline__ void mask_scores(float (&s)[T::kMTiles][T::kNTiles][4],
                                            const FwdParams& p, const WorkTile& w, KeyTileRef tile,
                                            int warp_row0, int lane) {
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = warp_row0 + mt * 16 + (lane >> 2) + 8 * h;
      mask_row<T>(s[mt], h,
                  row_rule<T::kBlockM, T::kBlockN>(p, tile, r, w.q_tile * T::kBlockM + r, w), lane);
    }
  }
}

// mask_scores with the window rows' bounds computed once per item (RowWindow); block maps as
// before.
template <typename T>
__device__ __forceinline__ void mask_scores(float (&s)[T::kMTiles][T::kNTiles][4],
                                            const FwdParams& p, const WorkTile& w, KeyTileRef tile,
                                            const RowWindow<T::kMTiles>& win, int warp_row0,
                                            int lane) {
  if (p.mask_mode != FwdMaskMode::kWindow) {
    mask_scores<T>(s, p, w, tile, warp_row0, lane);
    return;
  }
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mask_row<T>(s[mt], h, win.template rule<T::kBlockN>(mt, h, tile), lane);
    }
  }
}

// O = 0: the accumulators of a new item (and of an item computed again).
template <typename T>
__device__ __forceinline__ void zero_o(float (&o)[T::kMTiles][T::kDTiles][4]) {
#pragma unroll
  for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
    for (int dt = 0; dt < T::kDTiles; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.0f;
    }
  }
}

// The sum of x over the quad of lanes that shares a row (lane = 4 g + t).
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

template <typename T>
struct OnlineSoftmax {
  float m[T::kMTiles][2];  // running max of the row's scores (raw or log2 units)
  float l[T::kMTiles][2];  // this thread's part of the running sum (quad-reduced at the end)

  __device__ __forceinline__ OnlineSoftmax() {
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
      m[mt][0] = m[mt][1] = -INFINITY;
      l[mt][0] = l[mt][1] = 0.0f;
    }
  }

  // Folds one tile of scores into the state; s becomes the tile's probabilities.
  //
  // The reference max m moves only when a row's new maximum exceeds it by more than
  // kRescaleLog2 in log2 units (FlashAttention-4's conditional rescaling): the probabilities
  // then stay below 2^kRescaleLog2, and m, l and O stay consistent, so the result is the same
  // up to rounding. O is rescaled only when some row of the warp moved its m (alpha != 1) and
  // never on the first tile (O is still zero): with a random start the max rises on most of
  // the first ten tiles, and each rescale costs Dv / 2 * kMTiles multiplies on the path to
  // the P V products, which short sequences (a few tiles per query tile) paid on most tiles.
  static constexpr float kRescaleLog2 = 8.0f;
  __device__ __forceinline__ void update(float (&s)[T::kMTiles][T::kNTiles][4],
                                         float (&o)[T::kMTiles][T::kDTiles][4], float sl2,
                                         bool first = false) {
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float mx = row_max(s, mt, h, sl2);
        fold_row(s, mt, h, sl2, mx, [&](float alpha) {
          if (!first && __any_sync(0xffffffffu, mx != m[mt][h])) {
#pragma unroll
            for (int dt = 0; dt < T::kDTiles; ++dt) {
              o[mt][dt][2 * h] *= alpha;
              o[mt][dt][2 * h + 1] *= alpha;
            }
          }
        });
      }
    }
  }

  // update() for a caller whose O is still being accumulated (a P V product in flight): s
  // becomes the tile's probabilities and alpha the factors O's rows need before the next
  // product (rescale()); false when every row of the warp keeps its max (alpha = 1).
  __device__ __forceinline__ bool update_deferred(float (&s)[T::kMTiles][T::kNTiles][4], float sl2,
                                                  float (&alpha)[T::kMTiles][2]) {
    bool moved = false;
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float mx = row_max(s, mt, h, sl2);
        fold_row(s, mt, h, sl2, mx, [&](float a) {
          moved |= mx != m[mt][h];
          alpha[mt][h] = a;
        });
      }
    }
    return __any_sync(0xffffffffu, moved);
  }

  __device__ __forceinline__ static void rescale(float (&o)[T::kMTiles][T::kDTiles][4],
                                                 const float (&alpha)[T::kMTiles][2]) {
#pragma unroll
    for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
      for (int dt = 0; dt < T::kDTiles; ++dt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) o[mt][dt][e] *= alpha[mt][e >> 1];
      }
    }
  }

 private:
  // The reference max of row half (mt, h) after this tile: the tile's max over the quad when it
  // rises by more than kRescaleLog2, else the current one. -inf - -inf is NaN, so a row
  // without a visible key keeps m = -inf.
  __device__ __forceinline__ float row_max(const float (&s)[T::kMTiles][T::kNTiles][4], int mt,
                                           int h, float sl2) const {
    float mx = m[mt][h];
#pragma unroll
    for (int nt = 0; nt < T::kNTiles; ++nt) {
      mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    if (!(mx * sl2 - m[mt][h] * sl2 > kRescaleLog2)) mx = m[mt][h];
    return mx;
  }

  // Moves row half (mt, h) to reference max mx: its scores in s become probabilities and its
  // sum takes them in. Before m moves, scaled(alpha) gets the factor for what was accumulated
  // so far (it may still compare mx with m).
  template <typename Scaled>
  __device__ __forceinline__ void fold_row(float (&s)[T::kMTiles][T::kNTiles][4], int mt, int h,
                                           float sl2, float mx, Scaled&& scaled) {
    const float m_sub = mx == -INFINITY ? 0.0f : mx * sl2;
    const float alpha = ptx::exp2_approx(m[mt][h] * sl2 - m_sub);
    scaled(alpha);
    m[mt][h] = mx;
    float sum = 0.0f;
#pragma unroll
    for (int nt = 0; nt < T::kNTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float pr = ptx::exp2_approx(fmaf(s[mt][nt][2 * h + e], sl2, -m_sub));
        s[mt][nt][2 * h + e] = pr;
        sum += pr;
      }
    }
    l[mt][h] = fmaf(l[mt][h], alpha, sum);
  }
};

}  // namespace polyhead::cuda
