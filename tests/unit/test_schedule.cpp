// The persistent kernels' work list (src/cuda/fwd/schedule.h), checked on the host: every
// (query tile slot, head, sequence) is one item in both orders, and the CTAs of a persistent
// grid take every item exactly once, for grids smaller than, equal to and larger than the list
// (the kernel stops at the first item past the end), up to lists of millions of items.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cuda/fwd/schedule.h"

namespace polyhead {
namespace {

struct ListCase {
  int64_t q_tiles, heads, seqs;
};

TEST(WorkList, EveryItemIsOneSlotHeadSequenceInBothOrders) {
  for (const ListCase& lc : {ListCase{1, 1, 1}, ListCase{7, 3, 5}, ListCase{128, 16, 1},
                             ListCase{4, 16, 32}, ListCase{3, 65535, 2}}) {
    for (bool slot_major : {false, true}) {
      cuda::FwdParams f;
      cuda::set_work_list(f, lc.q_tiles, lc.heads, lc.seqs, slot_major);
      ASSERT_EQ(f.work_items, lc.q_tiles * lc.heads * lc.seqs);
      std::vector<uint8_t> seen(size_t(f.work_items), 0);
      for (uint32_t x = 0; x < uint32_t(f.work_items); ++x) {
        const cuda::ItemCoords c = cuda::split_item(f, x);
        ASSERT_TRUE(c.slot >= 0 && c.slot < lc.q_tiles && c.head >= 0 && c.head < lc.heads &&
                    c.z >= 0 && c.z < lc.seqs)
            << "item " << x;
        // The order: slot-major lists a slot's heads and sequences together, head-major a
        // head's slots together.
        const int64_t want = slot_major ? (c.slot * lc.seqs + c.z) * lc.heads + c.head
                                        : (c.z * lc.heads + c.head) * lc.q_tiles + c.slot;
        ASSERT_EQ(int64_t(x), want) << "slot_major " << slot_major;
        seen[size_t((c.z * lc.heads + c.head) * lc.q_tiles + c.slot)]++;
      }
      for (uint8_t s : seen) ASSERT_EQ(s, 1);
    }
  }
}

TEST(WorkList, SplitsRepeatTheListOncePerShare) {
  for (const ListCase& lc : {ListCase{1, 8, 1}, ListCase{7, 3, 5}, ListCase{3, 64, 2}}) {
    for (int32_t splits : {2, 3, 32}) {
      for (bool slot_major : {false, true}) {
        cuda::FwdParams f, plain;
        cuda::set_work_list(f, lc.q_tiles, lc.heads, lc.seqs, slot_major, splits);
        cuda::set_work_list(plain, lc.q_tiles, lc.heads, lc.seqs, slot_major);
        ASSERT_EQ(f.work_items, plain.work_items * splits);
        for (uint32_t x = 0; x < uint32_t(f.work_items); ++x) {
          const cuda::ItemCoords c = cuda::split_item(f, x);
          const uint32_t base = x % uint32_t(plain.work_items);
          const cuda::ItemCoords p = cuda::split_item(plain, base);
          ASSERT_EQ(c.split, int32_t(x / uint32_t(plain.work_items))) << "item " << x;
          ASSERT_TRUE(c.slot == p.slot && c.head == p.head && c.z == p.z && p.split == 0)
              << "item " << x;
        }
      }
    }
  }
}

TEST(PersistentSchedule, EveryItemTakenOnce) {
  for (int32_t items : {1, 2, 131, 132, 133, 264, 1000, 2048, 3 << 20}) {
    for (int32_t ctas : {1, 2, 3, 131, 132, 133, 4096}) {
      if (ctas > items) continue;  // the launch uses min(items, SMs, cap) CTAs
      std::vector<uint8_t> taken(size_t(items), 0);
      for (int32_t c = 0; c < ctas; ++c) {
        const cuda::PersistentSchedule s{items, ctas, c};
        uint32_t last = 0;
        for (int32_t r = 0;; ++r) {
          const uint32_t x = s.item(r);
          if (r > 0) {
            ASSERT_GT(x, last) << "item() must grow with the round";
          }
          last = x;
          if (x >= uint32_t(items)) break;
          ASSERT_EQ(taken[x]++, 0) << "item " << x << " taken twice";
        }
      }
      for (int32_t x = 0; x < items; ++x) ASSERT_EQ(taken[size_t(x)], 1) << "item " << x;
    }
  }
}

}  // namespace
}  // namespace polyhead
