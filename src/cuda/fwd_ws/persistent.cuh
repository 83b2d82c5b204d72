// The persistent form of the warp-specialized kernel (fwd_ws/kernel.cuh), opt-in
// (FwdOverrides::ws_persistent): on the H200 it is slower than one CTA per item except at d256
// with 4k-8k keys (docs/cuda-forward.md, v13). kMinBlocksPerSm CTAs per SM walk the work list
// (schedule.h) in the snake order of the wgmma kernel, so an item costs no launch, no barrier
// setup and no empty ring:
//   the producer loads the next item's Q as soon as both consumers have arrived on q_empty
//     (after their last products of the item), and streams K and V through the ring in one
//     sequence over all of the CTA's items, so the next item's first tiles load while the
//     consumers finish the current one and write its output (from registers: Q's rows are not
//     free for the staged epilogue of fwd_ws/epilogue.cuh; with 16-byte stores after a
//     transpose within each quad where O allows, fwd/epilogue.cuh write_output_vec16);
//     Starting those loads earlier (the first kStages K, V tiles before the wait for Q's
//     buffer, and Q released after the item's last S instead of its last P V) changed nothing
//     measurable (dev/cuda_fwd/rejected/ws-persistent-early.patch, gpu-ab call 15);
//   the consumers cannot recompute an item themselves (the ring already holds the next item's
//     tiles), so a warpgroup whose rows of an item with partial tiles end non-finite lists
//     them, and fwd_ws/exact_items.cuh computes them again exactly after this kernel,
//     launched as its programmatic dependent (launch.cuh), which gained 1-5% over a plain
//     launch after it (gpu-ab call 67: dense 512 keys 0.941x -> 0.986x of the plain kernel,
//     window 0.947x -> 0.961x).
#pragma once

#include "cuda/fwd/schedule.h"
#include "cuda/fwd_ws/kernel.cuh"

namespace polyhead::cuda {

template <typename T, bool kPatched>
__global__ void __launch_bounds__(T::kCtaThreads, T::kMinBlocksPerSm)
    fwd_ws_persistent_kernel(const __grid_constant__ FwdParams p,
                             const __grid_constant__ CUtensorMap tq,
                             const __grid_constant__ CUtensorMap tk,
                             const __grid_constant__ CUtensorMap tv) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const int tid = int(threadIdx.x);
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // warp-uniform (kernel.cuh)
  const WsRing<T> ring(ptx::smem_u32(smem_raw));
  if (tid == 0) {
    init_ws_barriers<T>(ring);
    // The exact pass (launch.cuh) may launch now: its CTAs wait for this grid's completion.
    asm volatile("griddepcontrol.launch_dependents;");
  }
  __syncthreads();
  const PersistentSchedule sched{p.work_items, int32_t(gridDim.x), int32_t(blockIdx.x)};

  if (wg == 0) {  // producer
    tma::release_registers<T::kProducerRegs>();
    if (tid == 0) {
      prefetch_ws_maps(&tq, &tk, &tv);
      int32_t g = 0, it = 0;  // ring tiles and items so far
      for (int32_t r = 0;; ++r) {
        const uint32_t item = sched.item(r);
        if (item >= uint32_t(p.work_items)) break;
        WorkTile w;
        if (!resolve_item<T::kBlockM>(p, int32_t(item), w)) continue;  // varlen padding
        const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
        // Q is free once the consumers are done with the previous item's S products:
        // completion it - 1 of q_empty.
        if (it > 0) tma::wait(ring.q_empty(), uint32_t((it - 1) & 1));
        load_q_ws<T, kPatched>(ring, &tq, p, w);
        timeline_mark(p, kTlQIssued, 0, item);
        const int32_t kv_head = w.head / p.group;
        for (int32_t n = 0; n < tiles.count; ++n, ++g) {
          produce_kv_ws<T, kPatched>(ring, g, &tk, &tv, p, w, kv_head, tiles, n);
        }
        timeline_mark(p, kTlKvIssued, 0, item);
        timeline_mark(p, kTlTiles, tiles.count, item);
        timeline_tally(p, ring, 2, item);  // the waits for this item's stages
        ++it;
      }
    }
    return;
  }

  tma::claim_registers<T::kConsumerRegs>();
  const WsConsumer c(tid);
  const float sl2 = p.transform ? 1.0f : p.scale_log2;
  const bool marks = (c.ctid & 127) == 0;  // timeline: one thread per consumer warpgroup
  int32_t g = 0, it = 0;
  for (int32_t r = 0;; ++r) {
    const uint32_t item = sched.item(r);
    if (item >= uint32_t(p.work_items)) break;
    WorkTile w;
    if (!resolve_item<T::kBlockM>(p, int32_t(item), w)) continue;
    const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
    float o[1][T::kDTiles][4];
    zero_o<T>(o);
    OnlineSoftmax<T> softmax;
    if (c.ctid == 0) timeline_mark(p, kTlStart, 0, item), timeline_mark(p, kTlSm, 0, item);
    tma::wait(ring.q_full(), uint32_t(it & 1));
    if (marks) timeline_mark(p, kTlQLanded0 + 3 * c.cw, 0, item);
    bool partial = false;
    // The ring position, broadcast from lane 0 so ptxas knows it is warp-uniform and keeps the
    // loop's stage arithmetic in uniform registers, as in the plain kernel (whose count starts
    // at 0); from the item's tile count it was per-thread, with R2UR on every wgmma descriptor.
    g = __shfl_sync(0xffffffffu, g, 0);
    consume<T>(p, w, tiles, ring, g, c, sl2, o, softmax, partial);
    g += tiles.count;
    if (marks) timeline_mark(p, kTlLoopEnd0 + 3 * c.cw, 0, item);
    tma::arrive(ring.q_empty());  // every S product of the item has completed
    // Partial tiles whose V holds Inf/NaN (see kernel.cuh): the exact pass takes this consumer
    // warpgroup's 64 rows of the item, listed as item * kConsumers + cw. Each warpgroup
    // decides alone, as in the plain kernel (recompute.cuh), so that warpgroup 0 goes on to
    // its epilogue without waiting for warpgroup 1's last products (gpu-ab call 70, against
    // the plain kernel: window d128 0.959x -> 0.971x, causal 512 keys 0.821x -> 0.839x).
    if (partial && warpgroup_or(c.cw, !isfinite(o_sum<T>(o))) && (c.ctid & 127) == 0) {
      p.redo_items[atomicAdd(p.redo_count, 1)] = item * uint32_t(T::Tile::kConsumers) + c.cw;
    }
    if (o_rows_vec16(p)) {
      write_output_vec16<T, kPatched>(o, softmax, p, w, sl2, c.warp_row0, c.lane);
    } else {
      write_output<T, kPatched>(o, softmax, p, w, sl2, c.warp_row0, c.lane);
    }
    if ((c.ctid & 127) < 32) timeline_consumer_end(p, ring, c.cw, c.lane, item);
    ++it;
  }
#else
  __trap();  // built without sm_90a code for this device: the dispatcher never launches it
#endif
}

}  // namespace polyhead::cuda
