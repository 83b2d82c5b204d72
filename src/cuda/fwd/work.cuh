// What one CTA works on: its (sequence, head, query tile), the key tiles it visits and the
// element rule of the partial ones. Shared by the tensor-core (fwd/) and SIMT (fwd_simt/)
// kernels, templated on their tile shape.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/mask_policy.h"
#include "cuda/fwd/params.h"
#include "cuda/fwd/schedule.h"

namespace polyhead::cuda {

struct WorkTile {
  int32_t batch = 0;    // index into dimension 0 of q, k, v, o, lse (0 for varlen)
  int32_t seq = 0;      // sequence index (for block-map rows)
  int32_t head = 0;     // query head
  int32_t q_tile = 0;   // query tile within the sequence
  int32_t q_start = 0;  // first token of the sequence in dimension 1 of q, o, lse
  int32_t k_start = 0;  // ... of k, v
  int32_t seqlen_q = 0;
  int32_t seqlen_k = 0;
  int32_t split = 0;  // split-KV: which share of the key tiles (params.h)
};

// The LSE element of token `token` (a row of the sequence, in token order) of a work tile.
__device__ __forceinline__ float& lse_at(const FwdParams& p, const WorkTile& w, int32_t token) {
  return p.lse[int64_t(w.batch) * p.lse_batch_stride + int64_t(w.head) * p.lse_head_stride +
               int64_t(w.q_start + token) * p.lse_row_stride];
}

// The learned sink of the work tile's head, -inf without sinks.
__device__ __forceinline__ float head_sink(const FwdParams& p, const WorkTile& w) {
  return p.sinks ? p.sinks[w.head * p.sinks_stride] : -INFINITY;
}

// Where the work tile's (batch, head) starts in O, in elements; its rows follow o_row_stride.
__device__ __forceinline__ int64_t o_head_offset(const FwdParams& p, const WorkTile& w) {
  return int64_t(w.batch) * p.o_batch_stride + int64_t(w.head) * p.o_head_stride;
}

// Resolves grid coordinates (x: query tile slot, head, z: batch) into a work tile; false when
// there is nothing to do (a virtual varlen tile past its sequence's end). Query tiles run
// last-first: under a causal mask the last tiles visit the most key tiles, and starting them
// first shortens the tail of the grid.
template <int kBlockM>
__device__ __forceinline__ bool resolve_work_at(const FwdParams& p, int32_t x_slot, int32_t head,
                                                int32_t z, WorkTile& w) {
  const int32_t x = p.q_tiles - 1 - x_slot;
  w.head = head;
  if (p.cu_seqlens_q == nullptr) {
    w.batch = w.seq = z;
    w.q_tile = x;
    w.q_start = w.k_start = 0;
    w.seqlen_q = p.seqlen_q;
    w.seqlen_k = p.seqlen_k;
    return true;
  }
  // Sequence b owns virtual tiles from start(b) = floor(cu_q[b] / kBlockM) + b, which grows
  // strictly with b: the owner of x is the last b with start(b) <= x.
  const int32_t* cq = p.cu_seqlens_q;
  int32_t lo = 0, hi = p.batch - 1;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) / 2;
    if (cq[mid * p.cu_q_stride] / kBlockM + mid <= x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int32_t q0 = cq[lo * p.cu_q_stride];
  w.batch = 0;
  w.seq = lo;
  w.q_tile = x - (q0 / kBlockM + lo);
  w.q_start = q0;
  w.seqlen_q = cq[(lo + 1) * p.cu_q_stride] - q0;
  w.k_start = p.cu_seqlens_k[lo * p.cu_k_stride];
  w.seqlen_k = p.cu_seqlens_k[(lo + 1) * p.cu_k_stride] - w.k_start;
  return w.q_tile * kBlockM < w.seqlen_q;
}

// The work tile of this CTA in a grid of (q_tiles, heads_q, batch or 1).
template <int kBlockM>
__device__ __forceinline__ bool resolve_work(const FwdParams& p, WorkTile& w) {
  return resolve_work_at<kBlockM>(p, int32_t(blockIdx.x), int32_t(blockIdx.y), int32_t(blockIdx.z),
                                  w);
}

// Item x of the persistent kernels' work list (schedule.h).
template <int kBlockM, bool kSplits = false>
__device__ __forceinline__ bool resolve_item(const FwdParams& p, int32_t item, WorkTile& w) {
  const ItemCoords c = split_item<kSplits>(p, uint32_t(item));
  w.split = c.split;
  return resolve_work_at<kBlockM>(p, c.slot, c.head, c.z, w);
}

// Global addresses of a work tile's first query row (q tile i0) and first key of its sequence,
// for the query head and its kv head; rows then advance by the tensors' row strides.
template <typename Elem>
struct TileOrigins {
  const Elem *q, *k, *v;
  __device__ __forceinline__ TileOrigins(const FwdParams& p, const WorkTile& w, int32_t i0) {
    const int32_t kv_head = w.head / p.group;
    q = static_cast<const Elem*>(p.q) + int64_t(w.batch) * p.q_batch_stride +
        int64_t(w.q_start + i0) * p.q_row_stride + int64_t(w.head) * p.q_head_stride;
    k = static_cast<const Elem*>(p.k) + int64_t(w.batch) * p.k_batch_stride +
        int64_t(w.k_start) * p.k_row_stride + int64_t(kv_head) * p.k_head_stride;
    v = static_cast<const Elem*>(p.v) + int64_t(w.batch) * p.v_batch_stride +
        int64_t(w.k_start) * p.v_row_stride + int64_t(kv_head) * p.v_head_stride;
  }
};

__device__ __forceinline__ detail::WindowPolicy window_policy(const FwdParams& p,
                                                              const WorkTile& w) {
  return {p.window_left, p.window_right, p.top_left ? 0 : int64_t(w.seqlen_k) - w.seqlen_q,
          w.seqlen_k};
}

struct KeyTileRef {
  int32_t index = 0;  // key tile: keys [index * kBlockN, (index + 1) * kBlockN)
  int32_t slot = -1;  // partial tile: its bitmask slot (block map) or 0 (window); -1: full
};

// The key tiles of one query tile, in ascending order: by formula (window) or from the
// uploaded block map. A tile is full only if every (row < seqlen_q, key) pair is visible and
// the tile lies inside the sequence, so full tiles skip all masking work.
template <int kBlockM, int kBlockN>
struct KeyTiles {
  FwdMaskMode mode = FwdMaskMode::kWindow;
  int32_t begin = 0, count = 0;  // window: first key tile; block map: first entry
  int32_t seqlen_k = 0;
  // Window: tile [k0, k0 + kBlockN) is full when lo(last row) <= k0 and hi(first row) >= k1.
  int32_t lo_last = 0, hi_first = 0;
  const int32_t* entries = nullptr;

  KeyTiles() = default;
  __device__ __forceinline__ KeyTiles(const FwdParams& p, const WorkTile& w) : mode(p.mask_mode) {
    seqlen_k = w.seqlen_k;
    const int32_t i0 = w.q_tile * kBlockM;
    const int32_t i_last = min(i0 + kBlockM, w.seqlen_q) - 1;
    if (mode == FwdMaskMode::kWindow) {
      const detail::WindowPolicy pol = window_policy(p, w);
      const int64_t lo = pol.lo(i0), hi = pol.hi(i_last);
      lo_last = int32_t(pol.lo(i_last));
      hi_first = int32_t(pol.hi(i0));
      if (lo < hi) {
        begin = int32_t(lo / kBlockN);
        count = int32_t((hi + kBlockN - 1) / kBlockN) - begin;
      }
    } else {
      const int32_t row = p.block_map.row_start[w.seq * p.heads_q + w.head] + w.q_tile;
      begin = p.block_map.row_ptr[row];
      count = p.block_map.row_ptr[row + 1] - begin;
      entries = p.block_map.tiles;
    }
  }

  // Split-KV (params.h): share `split` of `splits` keeps the next ceil(count / splits) tiles.
  __device__ __forceinline__ void keep_share(int32_t split, int32_t splits) {
    const int32_t per = (count + splits - 1) / splits;
    const int32_t first = min(count, split * per);
    begin += first;  // both modes index from begin
    count = min(count - first, per);
  }

  __device__ __forceinline__ KeyTileRef operator[](int32_t n) const {
    KeyTileRef t;
    if (mode == FwdMaskMode::kWindow) {
      t.index = begin + n;
      const int32_t k0 = t.index * kBlockN, k1 = k0 + kBlockN;
      t.slot = (k1 <= seqlen_k && lo_last <= k0 && hi_first >= k1) ? -1 : 0;
    } else {
      t.index = entries[2 * (begin + n)];
      t.slot = entries[2 * (begin + n) + 1];
      if (t.slot < 0 && (t.index + 1) * kBlockN > seqlen_k) t.slot = -2;  // full but clipped
    }
    return t;
  }
};

// Element rule of a partial tile for one query row, as a bitmask over the tile's keys: bit c
// of words[c / 32] says whether key k0 + c is visible. Window rules become bit ranges, so the
// kernels test one bit per element whatever the mask kind.
template <int kBlockN>
struct RowRule {
  uint32_t words[kBlockN / 32];
  __device__ __forceinline__ bool visible(int c) const { return (words[c / 32] >> (c % 32)) & 1u; }
};

// Bits [lo, hi) of a 32-bit word, lo and hi clamped to [0, 32].
__device__ __forceinline__ uint32_t bit_range(int32_t lo, int32_t hi) {
  lo = min(max(lo, 0), 32);
  hi = min(max(hi, lo), 32);
  return uint32_t(((1ull << hi) - 1ull) & ~((1ull << lo) - 1ull));
}

// The rule of keys [lo, hi) of the tile (offsets from its first key; any int32 values).
template <int kBlockN>
__device__ __forceinline__ RowRule<kBlockN> range_rule(int32_t lo, int32_t hi) {
  RowRule<kBlockN> rule;
#pragma unroll
  for (int x = 0; x < kBlockN / 32; ++x) rule.words[x] = bit_range(lo - 32 * x, hi - 32 * x);
  return rule;
}

// Row r of the tile (sequence row i) against key tile t.
template <int kBlockM, int kBlockN>
__device__ __forceinline__ RowRule<kBlockN> row_rule(const FwdParams& p, KeyTileRef t, int r,
                                                     int32_t i, const WorkTile& w) {
  if (t.slot >= 0 && p.mask_mode == FwdMaskMode::kBlockMap) {
    RowRule<kBlockN> rule;
    const uint32_t* src = p.block_map.bits + (int64_t(t.slot) * kBlockM + r) * (kBlockN / 32);
#pragma unroll
    for (int x = 0; x < kBlockN / 32; ++x) rule.words[x] = src[x];
    return rule;
  }
  const int32_t k0 = t.index * kBlockN;
  int32_t lo = 0, hi = w.seqlen_k - k0;  // a full block-map tile that runs past the last key
  if (t.slot != -2) {
    const detail::WindowPolicy pol = window_policy(p, w);
    lo = int32_t(pol.lo(i)) - k0;
    hi = int32_t(pol.hi(i)) - k0;
  }
  return range_rule<kBlockN>(lo, hi);
}

// The visible keys [lo, hi) of a thread's rows (r + 16 mt and r + 16 mt + 8 of its kMTiles m16
// tiles) under the window rule, in 32 bits (both lie in [0, seqlen_k]), computed once per item.
// Per partial tile, row_rule's 64-bit policy arithmetic for the rows and its branches made the
// mask about 290 instructions per thread in the d128 ws kernel; from these bounds it is 207, and
// the dense hot path stays at 491 (SASS at ddabac0). gpu-ab call 71: window d128 1.019x, d64
// 1.055x, causal 512 keys 1.024x, causal 2048 1.010x, dense and 16k causal within 0.3%.
template <int kMTiles>
struct RowWindow {
  int32_t lo[kMTiles][2] = {}, hi[kMTiles][2] = {};

  // row_rule of window tile t for row r + 16 mt + 8 h.
  template <int kBlockN>
  __device__ __forceinline__ RowRule<kBlockN> rule(int mt, int h, KeyTileRef t) const {
    const int32_t k0 = t.index * kBlockN;
    return range_rule<kBlockN>(lo[mt][h] - k0, hi[mt][h] - k0);
  }
};

// A thread's rows of the item's query tile, from its first row r; zeros (unused) under a block
// map.
template <int kBlockM, int kMTiles>
__device__ __forceinline__ RowWindow<kMTiles> row_window(const FwdParams& p, const WorkTile& w,
                                                         int r) {
  RowWindow<kMTiles> out;
  if (p.mask_mode != FwdMaskMode::kWindow) return out;
  const detail::WindowPolicy pol = window_policy(p, w);
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t i = int64_t(w.q_tile) * kBlockM + r + 16 * mt + 8 * h;
      out.lo[mt][h] = int32_t(pol.lo(i));
      out.hi[mt][h] = int32_t(pol.hi(i));
    }
  }
  return out;
}

}  // namespace polyhead::cuda
