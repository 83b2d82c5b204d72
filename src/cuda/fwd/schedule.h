// The work list of the persistent kernels (fwd_sm90/): every (query tile slot, query head,
// sequence) of a problem as one 32-bit index, the order of that list, and which CTA takes which
// item. Host and device code: the dispatcher fills the list's parameters, the kernels walk it,
// and tests/unit/test_schedule.cpp checks on the host that every item is taken exactly once.
#pragma once

#include <cstdint>

#include "core/mask_policy.h"  // POLYHEAD_HD
#include "cuda/fwd/params.h"

namespace polyhead::cuda {

// Head-major (equal-cost items): item x is slot (x mod q_tiles, (x / q_tiles) mod heads_q,
// x / (q_tiles heads_q)), so consecutive items are the query tiles of one head and share its
// keys in L2, as consecutive CTAs of a grid do. Slot-major (masks and varlen, whose cost varies
// with the query tile): the slot varies slowest, so the items running at once cost about the
// same. `seqs` is the batch, or 1 for varlen (whose slots are virtual tiles, work.cuh). The
// caller guarantees q_tiles * heads_q * seqs < 2^31 (fwd_supports refuses more).
// With kv_splits > 1 the list repeats once per split of the key tiles (split outermost). The
// caller also guarantees q_tiles * heads_q * seqs * kv_splits < 2^31.
inline void set_work_list(FwdParams& f, int64_t q_tiles, int64_t heads_q, int64_t seqs,
                          bool slot_major, int32_t kv_splits = 1) {
  const int64_t per_slot = heads_q * seqs;
  f.slot_major = slot_major;
  f.kv_splits = kv_splits;
  f.work_items = int32_t(q_tiles * per_slot * kv_splits);
  f.div_splits = FastDiv(uint32_t(q_tiles * per_slot));
  f.div_outer = FastDiv(uint32_t(slot_major ? per_slot : q_tiles));
  f.div_heads = FastDiv(uint32_t(heads_q));
}

struct ItemCoords {
  int32_t slot, head, z;  // grid coordinates: x (query tile slot), y (head), z (sequence)
  int32_t split = 0;      // range of key tiles (split-KV)
};

// kSplits = false: the caller never runs split lists (kernels without a split instance), and
// the division is not compiled.
template <bool kSplits = true>
POLYHEAD_HD ItemCoords split_item(const FwdParams& p, uint32_t x) {
  uint32_t split = 0;
  if (kSplits && p.kv_splits > 1) {
    split = p.div_splits.divide(x);
    x -= split * p.div_splits.d;
  }
  const uint32_t outer = p.div_outer.divide(x), inner = x - outer * p.div_outer.d;
  const uint32_t slot = p.slot_major ? outer : inner, hz = p.slot_major ? inner : outer;
  const uint32_t z = p.div_heads.divide(hz);
  return {int32_t(slot), int32_t(hz - z * p.div_heads.d), int32_t(z), int32_t(split)};
}

// Static persistent schedule: CTA c of G takes items r G + c in even rounds r and
// r G + G - 1 - c in odd ones, until the first one past the list (item() grows with r). Under
// masks the list is slot-major, so an item's cost falls with its position, and the snake order
// pairs a round's long items with the next round's short ones. (The head-major list with plain
// striding handed some CTAs mostly the longest causal tiles: with 128 query tiles and G = 132,
// CTA c got slots (c + 4 r) mod 128; causal d128 at 16k ran at 289 instead of 438 TFLOP/s.)
struct PersistentSchedule {
  int32_t items, ctas, cta;
  // Past the last item this may exceed 2^31 only by less than ctas: compared as unsigned.
  POLYHEAD_HD uint32_t item(int32_t round) const {
    return uint32_t(round) * uint32_t(ctas) + uint32_t((round & 1) ? ctas - 1 - cta : cta);
  }
};

}  // namespace polyhead::cuda
