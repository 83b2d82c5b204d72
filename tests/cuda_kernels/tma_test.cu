// TMA and mbarrier building blocks (src/cuda/tma) on the GPU: one CTA copies one box of a
// tensor map into shared memory with the 128-byte swizzle and waits on an mbarrier; the box is
// read back through the swizzle formula of fwd_sm90/mainloop.cuh and compared bit for bit with
// the host's tensor, zeros where the box leaves the tensor. Random 16-bit patterns, poisoned
// outputs. Needs compute capability 9.0.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/fwd/ptx.cuh"
#include "cuda/fwd_sm90/wgmma.cuh"
#include "cuda/fwd_ws/tensor_maps.h"
#include "cuda/tma/tensor_map.h"
#include "cuda/tma/tma.cuh"

namespace polyhead {
namespace {

struct Coords {
  int32_t c[5];
};

template <int kRank>
__global__ void copy_box_kernel(const __grid_constant__ CUtensorMap map, Coords at, uint32_t rows,
                                uint16_t* out) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  __shared__ __align__(8) uint64_t bar_word;
  const uint32_t raw = cuda::ptx::smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  const unsigned char* box = smem_raw + (base - raw);
  const uint32_t bar = cuda::ptx::smem_u32(&bar_word);
  if (threadIdx.x == 0) {
    cuda::tma::barrier_init(bar, 1);
    cuda::tma::fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    cuda::tma::prefetch_map(&map);
    cuda::tma::arrive_expect_tx(bar, rows * 128);  // the whole box, out-of-bounds parts too
    if constexpr (kRank == 4) {
      cuda::tma::load_4d(base, &map, bar, at.c[0], at.c[1], at.c[2], at.c[3]);
    } else {
      cuda::tma::load_5d(base, &map, bar, at.c[0], at.c[1], at.c[2], at.c[3], at.c[4]);
    }
  }
  cuda::tma::wait(bar, 0);
  for (uint32_t i = threadIdx.x; i < rows * 64; i += blockDim.x) {
    const uint32_t r = i / 64, col = i % 64;
    // The layout the Hopper kernels read (a 64-row tile: one 64-column swizzle block).
    out[i] =
        *reinterpret_cast<const uint16_t*>(box + cuda::sm90::swizzled_offset<64>(int(r), int(col)));
  }
#else
  __trap();
#endif
}

bool hopper() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return false;
  cudaDeviceProp prop{};
  POLYHEAD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  return prop.major == 9 && prop.minor == 0;
}

std::vector<uint16_t> random_bits(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = uint16_t(gen() | 1u);  // never zero, so zero-fill is told apart
  return v;
}

// Device memory holding a copy of `host`, freed however the test ends.
struct DeviceCopy {
  void* ptr = nullptr;
  explicit DeviceCopy(const std::vector<uint16_t>& host) {
    POLYHEAD_CUDA_CHECK(cudaMalloc(&ptr, host.size() * 2));
    POLYHEAD_CUDA_CHECK(cudaMemcpy(ptr, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  }
  ~DeviceCopy() { cudaFree(ptr); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
};

// Copies the box at `at` with `rank` dimensions and returns its rows * 64 elements.
std::vector<uint16_t> copy_box(const cuda::TmaTensor& t, Coords at, uint32_t rows) {
  const CUtensorMap map = cuda::make_tensor_map_sw128(t);
  const DeviceCopy out(std::vector<uint16_t>(rows * 64, 0xEEEE));  // poison
  auto* o = static_cast<uint16_t*>(out.ptr);
  const size_t smem = rows * 128 + 1024;
  if (t.rank == 4) {
    copy_box_kernel<4><<<1, 128, smem>>>(map, at, rows, o);
  } else {
    copy_box_kernel<5><<<1, 128, smem>>>(map, at, rows, o);
  }
  POLYHEAD_CUDA_CHECK(cudaGetLastError());
  std::vector<uint16_t> host(rows * 64);
  POLYHEAD_CUDA_CHECK(cudaMemcpy(host.data(), o, host.size() * 2, cudaMemcpyDeviceToHost));
  return host;
}

// [B, S, H, D] as (D, H, S, B): 64 columns of one head over 64 rows, the last 20 past S.
TEST(Tma, TokenRowsWithZerosPastTheEnd) {
  if (!hopper()) GTEST_SKIP() << "needs compute capability 9.0";
  const int64_t B = 2, S = 300, H = 3, D = 128;
  const std::vector<uint16_t> x = random_bits(size_t(B * S * H * D), 7);
  const DeviceCopy dev(x);
  // The view the warp-specialized kernel loads K and V through.
  const cuda::TmaTensor t = cuda::token_rows_tensor(dev.ptr, B, S, H, D, S * H * D, H * D, D, 64);
  const int32_t d0 = 64, h = 2, s0 = 256, b = 1;
  const std::vector<uint16_t> got = copy_box(t, Coords{{d0, h, s0, b, 0}}, 64);
  for (int64_t r = 0; r < 64; ++r) {
    for (int64_t c = 0; c < 64; ++c) {
      const int64_t s = s0 + r;
      const uint16_t want = s < S ? x[size_t(((b * S + s) * H + h) * D + d0 + c)] : 0;
      ASSERT_EQ(got[size_t(r * 64 + c)], want) << "row " << r << " col " << c;
    }
  }
}

// [B, rows, cols, H, D] as (D, H, cols, rows, B): one 8 x 8 token patch per copy, row-major
// inside (the patch order of token_order.h), at an interior corner and across the grid's edge.
TEST(Tma, TwoDimensionalTokenPatches) {
  if (!hopper()) GTEST_SKIP() << "needs compute capability 9.0";
  const int64_t R = 16, C = 24, H = 2, D = 64;
  const std::vector<uint16_t> x = random_bits(size_t(R * C * H * D), 11);
  const DeviceCopy dev(x);
  // The patch-order view of the warp-specialized kernel, with 8 x 8 patches.
  cuda::TokenOrder order;
  order.patched = 1;
  order.grid[1] = int32_t(R), order.grid[2] = int32_t(C);
  order.shift[1] = order.shift[2] = 3;
  order.inner[1] = order.inner[2] = 3;  // no sub-patches: the box is the whole patch
  order.patch_bits = order.sub_bits = 6;
  const cuda::TmaTensor t = cuda::patch_tensor(dev.ptr, order, 1, H, D, R * C * H * D, H * D, D);
  for (auto [r0, c0] : {std::pair{8, 8}, std::pair{12, 20}}) {
    const int32_t h = 1;
    const std::vector<uint16_t> got = copy_box(t, Coords{{0, h, c0, r0, 0}}, 64);
    for (int64_t pr = 0; pr < 8; ++pr) {
      for (int64_t pc = 0; pc < 8; ++pc) {
        for (int64_t d = 0; d < 64; ++d) {
          const int64_t r = r0 + pr, c = c0 + pc;
          const uint16_t want = r < R && c < C ? x[size_t(((r * C + c) * H + h) * D + d)] : 0;
          ASSERT_EQ(got[size_t((pr * 8 + pc) * 64 + d)], want)
              << "patch (" << r0 << ", " << c0 << ") token (" << pr << ", " << pc << ") d " << d;
        }
      }
    }
  }
}

}  // namespace
}  // namespace polyhead
