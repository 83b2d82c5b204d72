// Thin wrappers over the Hopper warpgroup matrix instructions (sm_90a) the sm90 forward kernel
// uses: shared-memory matrix descriptors for the 128-byte swizzle, wgmma.mma_async with A from
// shared memory (S = Q K^T) or registers (O += P V), and the fence / commit / wait that order
// them against ordinary register and shared-memory traffic.
//
// Shared-memory layout (PTX ISA, "Shared Memory Matrix Layout", 128B swizzling): a tile is
// stored as column blocks of 64 16-bit elements (128 bytes per row); row r of a block starts at
// r * 128 and its 16-byte chunk c sits at chunk position c ^ (r % 8), so the 8 rows of a
// 1024-byte atom spread every column over all 32 banks. Every block starts 1024-byte aligned.
//   K-major (Q and K, the reduction dim D contiguous): one wgmma k16 step reads 32 bytes of
//   each row, so the descriptor of step kk starts at block(kk / 4) + 32 * (kk % 4); the stride
//   byte offset is 1024 (8 rows), the leading byte offset is unused for swizzled K-major.
//   MN-major (V: the output dim Dv contiguous, the reduction runs over keys): the descriptor of
//   k16 step kk starts at key row 16 kk (2048 bytes per step), the leading byte offset is the
//   distance between 64-column blocks (kBlockN * 128 bytes), the stride byte offset 1024 (the
//   next 8 keys).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace polyhead::cuda::sm90 {

// Byte offset of element (row, col) of a [rows][cols] 16-bit tile in the swizzled layout.
template <int kRows>
__host__ __device__ constexpr uint32_t swizzled_offset(int row, int col) {
  return uint32_t((col / 64) * kRows * 128 + row * 128 + ((((col % 64) / 8) ^ (row % 8)) * 16) +
                  (col % 8) * 2);
}

// Matrix descriptor: start address, leading and stride byte offsets (all >> 4), 128B swizzle.
__device__ __forceinline__ uint64_t desc_sw128(uint32_t smem_addr, uint32_t lead_bytes,
                                               uint32_t stride_bytes) {
  return uint64_t((smem_addr & 0x3FFFFu) >> 4) | (uint64_t((lead_bytes >> 4) & 0x3FFFu) << 16) |
         (uint64_t((stride_bytes >> 4) & 0x3FFFu) << 32) | (uint64_t(1) << 62);
}

// The descriptor of the matrix `bytes` further on than the one `desc` describes: its start
// address field (address / 16, 14 bits) plus bytes / 16. Exact for 16-byte multiples within
// shared memory (every address below 2^18), so a product's k-steps add constants to one
// descriptor instead of rebuilding each from its address.
__device__ __forceinline__ uint64_t desc_advance(uint64_t desc, uint32_t bytes) {
  const uint32_t lo = uint32_t(desc) + (bytes >> 4), hi = uint32_t(desc >> 32);
  return (uint64_t(hi) << 32) | lo;
}

// Orders this thread's earlier register and shared-memory accesses before the next wgmma.
__device__ __forceinline__ void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most N committed wgmma groups of the warpgroup are pending.
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Makes this thread's earlier shared-memory writes (cp.async included) visible to the async
// proxy that wgmma reads through; a barrier after it publishes them to the other warps.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Pins accumulator registers at this point of the program: the compiler may not move their
// reads or writes across it, so code after a wait() never sees a register the tensor cores
// are still writing, and code before a wgmma finishes its writes first.
template <int R, int C>
__device__ __forceinline__ void fence_operands(float (&d)[R][C]) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int c = 0; c < C; ++c) asm volatile("" : "+f"(d[r][c])::"memory");
  }
}
template <int N>
__device__ __forceinline__ void fence_operands(uint32_t (&a)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(a[i])::"memory");
}

// D (64 x N fp32 per warpgroup; the thread's part in the mma.sync m16n8 accumulator order of
// its warp's 16 rows) = A B (+ D when scale_d != 0), k = 16. A and B from shared memory,
// both K-major.
template <typename Elem, int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 8][4], uint64_t a, uint64_t b, int scale_d);
// The same with A from registers (the m16k16 A fragment of mma.sync, per warp) and B
// MN-major.
template <typename Elem, int N>
__device__ __forceinline__ void wgmma_rs(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t b,
                                         int scale_d);

#include "cuda/fwd_sm90/wgmma_ops.inc"

}  // namespace polyhead::cuda::sm90
