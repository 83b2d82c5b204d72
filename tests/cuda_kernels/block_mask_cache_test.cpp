// User block masks through the device cache of block maps (cuda/fwd/block_map_cache.h): a
// repeated mask hits its entry, a mask changed in place behind the same pointer is compiled
// again, entries are evicted within the budget, and a budget too small for any entry leaves
// every call on the per-call path. Every call is checked against the fp64 reference.
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/fwd/block_map_cache.h"
#include "cuda_kernels/fwd_case.h"

namespace polyhead::testing_cuda {
namespace {

// A random block mask [heads, nq, nk] of `block` x `block` blocks, about half of them visible,
// each query block row keeping at least one (rows with no visible key are fine too, but the
// cases stay dense enough to exercise every tile kind).
std::vector<uint8_t> random_blocks(int64_t heads, int64_t nq, int64_t nk, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> bits(size_t(heads * nq * nk));
  for (auto& b : bits) b = uint8_t(rng() & 1u);
  for (int64_t r = 0; r < heads * nq; ++r) bits[size_t(r * nk + r % nk)] = 1;
  return bits;
}

FwdCase block_case(std::vector<uint8_t>& bits, int64_t block, uint64_t seed) {
  FwdCase c;
  c.sq = c.sk = 512;
  c.hq = 4, c.hkv = 2;
  c.seed = seed;
  const int64_t n = (c.sq + block - 1) / block;
  BlockMask m;
  m.bits.view = TensorView::contiguous(bits.data(), DType::u8, {c.hq, n, n});
  m.block_q = m.block_k = block;
  c.mask = MaskSpec(m);
  return c;
}

// Restores the default budget however the test ends.
struct BudgetGuard {
  ~BudgetGuard() { cuda::set_block_map_content_budget(size_t(256) << 20); }
};

TEST(CudaFwd, UserBlockMaskHitsAndChanges) {
  SKIP_WITHOUT_GPU();
  const BudgetGuard guard;
  cuda::set_block_map_content_budget(size_t(256) << 20);
  // 128-blocks give whole tiles (no bits), 64-blocks partial ones (bits per row).
  for (const int64_t block : {int64_t(128), int64_t(64)}) {
    std::vector<uint8_t> bits = random_blocks(4, 512 / block, 512 / block, uint64_t(block));
    const FwdCase c = block_case(bits, block, 3);
    const size_t before = cuda::block_map_cache_stats().by_content_entries;
    expect_matches(c);  // a miss: compiled and kept
    const size_t held = cuda::block_map_cache_stats().by_content_entries;
    EXPECT_EQ(held, before + 1) << c.describe();
    expect_matches(c);  // a hit
    EXPECT_EQ(cuda::block_map_cache_stats().by_content_entries, held) << c.describe();
    // Behind the same pointer: every block flipped. The entry of the old bytes cannot serve.
    for (auto& b : bits) b = uint8_t(b ^ 1u);
    for (size_t r = 0; r < bits.size(); r += size_t(512 / block)) bits[r] = 1;
    expect_matches(c);
    EXPECT_EQ(cuda::block_map_cache_stats().by_content_entries, held + 1) << c.describe();
  }
}

TEST(CudaFwd, UserBlockMaskEviction) {
  SKIP_WITHOUT_GPU();
  const BudgetGuard guard;
  std::vector<uint8_t> a = random_blocks(4, 8, 8, 11), b = random_blocks(4, 8, 8, 12);
  const FwdCase ca = block_case(a, 64, 5), cb = block_case(b, 64, 6);
  // Nothing fits: every idle entry goes, and every call compiles and uploads its own map.
  CUDA_OK(cudaDeviceSynchronize());
  cuda::set_block_map_content_budget(0);
  EXPECT_EQ(cuda::block_map_cache_stats().by_content_entries, size_t(0));
  EXPECT_EQ(cuda::block_map_cache_stats().by_content_bytes, size_t(0));
  expect_matches(ca);
  EXPECT_EQ(cuda::block_map_cache_stats().by_content_entries, size_t(0));
  // Room for one entry and a half: each new mask evicts the other's idle entry.
  cuda::set_block_map_content_budget(size_t(256) << 20);
  expect_matches(ca);
  const size_t entry = cuda::block_map_cache_stats().by_content_bytes;
  ASSERT_GT(entry, size_t(0));
  cuda::set_block_map_content_budget(entry + entry / 2);
  for (const FwdCase* c : {&cb, &ca, &cb}) {
    CUDA_OK(cudaDeviceSynchronize());  // the previous kernel has finished: its entry is idle
    expect_matches(*c);
    const cuda::BlockMapCacheStats st = cuda::block_map_cache_stats();
    EXPECT_EQ(st.by_content_entries, size_t(1)) << c->describe();
    EXPECT_LE(st.by_content_bytes, entry + entry / 2) << c->describe();
  }
}

}  // namespace
}  // namespace polyhead::testing_cuda
