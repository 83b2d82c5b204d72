// Device side of TMA and mbarriers (sm_90a): shared-memory barriers that count arrivals and
// transaction bytes, bulk tensor copies from a tensor map (tensor_map.h) into shared memory
// that complete on such a barrier, and the register reallocation of warp-specialized kernels.
//
// Used by the warp-specialized forward kernel (fwd_ws/); tests/cuda_kernels/tma_test.cu checks
// the copies on the GPU.
#pragma once

#include <cuda.h>  // CUtensorMap

#include <cstdint>

namespace polyhead::cuda::tma {

// An mbarrier (8 bytes, 8-byte aligned shared memory) expecting `count` arrivals per phase.
// Make the initialization visible (fence_barrier_init, then a CTA barrier) before any use.
__device__ __forceinline__ void barrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}

__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// One arrival that also announces `bytes` of copies that will complete on this phase.
__device__ __forceinline__ void arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}

// Whether the phase with parity `phase` (0 or 1) has completed (the instruction itself may
// suspend the thread for a while first).
__device__ __forceinline__ bool try_wait(uint32_t bar, uint32_t phase) {
  uint32_t done = 0;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(bar), "r"(phase)
      : "memory");
  return done != 0;
}

// Waits until the phase with parity `phase` (0 or 1) has completed. A phase that never
// completes is a protocol error (a byte count or an arrival missing), never a slow copy: after
// about 2^33 cycles (seconds) the thread exits, so a bug ends its launch with wrong output, which
// every test compares, instead of hanging the device. Not `trap`: a kernel holding a trap (or
// any call) gets one register budget for all its code, and the consumers of fwd_ws/ would lose
// the registers setmaxnreg gives them (168 instead of 232; d256 spilled 1.9 KB).
inline constexpr long long kWaitLimitCycles = 1ll << 33;
__device__ __forceinline__ void wait(uint32_t bar, uint32_t phase) {
  if (try_wait(bar, phase)) return;
  const long long start = clock64();
  while (!try_wait(bar, phase)) {
    if (clock64() - start > kWaitLimitCycles) asm volatile("exit;");
  }
}

__device__ __forceinline__ void prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// Copies the box at coordinates c (elements, innermost first; out-of-bounds parts are zeros)
// into shared memory at `dst` (1024-byte aligned for the 128-byte swizzle); its bytes count
// towards the current phase of `bar`.
__device__ __forceinline__ void load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                        int32_t c0, int32_t c1, int32_t c2, int32_t c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5, %6}], [%2];" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}

__device__ __forceinline__ void load_5d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                        int32_t c0, int32_t c1, int32_t c2, int32_t c3,
                                        int32_t c4) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5, %6, %7}], [%2];" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4)
      : "memory");
}

// Brings the box at coordinates c into the L2 cache, without a destination or a barrier (the
// copy that later loads it then hits L2 instead of waiting for device memory).
__device__ __forceinline__ void prefetch_l2_4d(const CUtensorMap* map, int32_t c0, int32_t c1,
                                               int32_t c2, int32_t c3) {
  asm volatile("cp.async.bulk.prefetch.tensor.4d.L2.global.tile [%0, {%1, %2, %3, %4}];" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}
__device__ __forceinline__ void prefetch_l2_5d(const CUtensorMap* map, int32_t c0, int32_t c1,
                                               int32_t c2, int32_t c3, int32_t c4) {
  asm volatile("cp.async.bulk.prefetch.tensor.5d.L2.global.tile [%0, {%1, %2, %3, %4, %5}];" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4)
               : "memory");
}

// Copies shared memory at `src` (the layout load_4d writes, 1024-byte aligned) to the box at
// coordinates c of the tensor; the parts of the box outside the tensor are not written. The
// store belongs to this thread's current bulk async-group (commit_stores).
__device__ __forceinline__ void store_4d(const CUtensorMap* map, uint32_t src, int32_t c0,
                                         int32_t c1, int32_t c2, int32_t c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];" ::"l"(
          reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}
// store_4d for 5-D tensor maps (patch order, fwd_ws/tensor_maps.h).
__device__ __forceinline__ void store_5d(const CUtensorMap* map, uint32_t src, int32_t c0,
                                         int32_t c1, int32_t c2, int32_t c3, int32_t c4) {
  asm volatile(
      "cp.async.bulk.tensor.5d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5, %6}], [%1];" ::
          "l"(reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4)
      : "memory");
}
__device__ __forceinline__ void commit_stores() {
  asm volatile("cp.async.bulk.commit_group;" ::: "memory");
}
// Waits until this thread's committed stores have read their shared memory (the writes to
// global memory complete on their own, before the kernel's end is visible).
__device__ __forceinline__ void wait_stores_read() {
  asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");
}

// Register reallocation between the warpgroups of a warp-specialized CTA (every warp of the
// warpgroup executes it): producers give registers back, consumers take them.
template <int kRegs>
__device__ __forceinline__ void release_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void claim_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kRegs));
}

}  // namespace polyhead::cuda::tma
