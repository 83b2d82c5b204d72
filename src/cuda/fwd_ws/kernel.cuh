// The warp-specialized Hopper forward kernel (sm_90a), first version: FlashAttention-3's
// structure without its intra-warpgroup overlap. One CTA per (sequence, query head, 128-row
// query tile), three warpgroups:
//   producer (warpgroup 0, 40 registers): one thread issues TMA copies of Q and of every K and
//     V tile into a ring of two stages, each completing on its stage's "full" mbarrier, and
//     reuses a stage once both consumers have arrived on its "empty" mbarrier;
//   consumers (warpgroups 1 and 2, 232 registers, 64 query rows each): wait for a stage, run
//     S = Q K^T, the masks and the online softmax, O += P V, and release the stage. No CTA-wide
//     barrier per tile, and no load addresses in the consumers' registers.
// Scores, masks, softmax and the epilogue are those of fwd/ and fwd_sm90/ (the consumer
// warpgroups' accumulators have the same layout).
//
// Status: opt-in only (FwdOverrides::family = FwdFamily::ws), for Dqk = Dv = 128, no mask,
// batched (not varlen); the dispatcher never picks it by itself. Not yet run on a GPU: it is
// here so the next GPU session can test and time it (`CudaFwd.WarpSpecializedDense`,
// `cuda_fwd_bench --family ws`). Partial tiles under a mask would need the Inf/NaN handling of
// fwd_sm90/kernel.cuh (recompute_exact), so masks are refused for now.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/fwd/epilogue.cuh"
#include "cuda/fwd/params.h"
#include "cuda/fwd/softmax.cuh"
#include "cuda/fwd/work.cuh"
#include "cuda/fwd_sm90/mainloop.cuh"
#include "cuda/tma/tma.cuh"

namespace polyhead::cuda {

template <typename Elem_, int D>
struct FwdWsTraits : FwdTraitsBase<Elem_, D, D, FwdTileShape<128, 128, 8, 1>> {
  static constexpr int kMTiles = 1;
  static constexpr int kStages = 2;
  static constexpr int kCtaThreads = 384;  // producer warpgroup + two consumer warpgroups
  static constexpr int kProducerRegs = 40;
  static constexpr int kConsumerRegs = 232;  // 128 x 40 + 256 x 232 <= 64k registers
  static constexpr uint32_t kBytesQ = 128 * D * 2;
  static constexpr uint32_t kBytesK = 128 * D * 2;
  static constexpr uint32_t kBytesV = 128 * D * 2;
  static constexpr uint32_t kBlockBytes = 128 * 128;  // one 64-column swizzle block of a tile
  static constexpr uint32_t kOffK = kBytesQ;
  static constexpr uint32_t kOffV = kOffK + kStages * kBytesK;
  static constexpr uint32_t kOffBar = kOffV + kStages * kBytesV;
  static constexpr uint32_t kSmemBytes = kOffBar + 8 * (1 + 3 * kStages) + 1024;  // + alignment
  static_assert(kSmemBytes <= 227 * 1024, "shared memory of one CTA");
  static_assert(D % 64 == 0, "64-column TMA boxes");
};

template <typename T>
__global__ void __launch_bounds__(T::kCtaThreads, 1)
    fwd_ws_kernel(const __grid_constant__ FwdParams p, const __grid_constant__ CUtensorMap tq,
                  const __grid_constant__ CUtensorMap tk, const __grid_constant__ CUtensorMap tv) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  WorkTile w;
  if (!resolve_work<T::kBlockM>(p, w)) return;  // the same answer for every thread
  const KeyTiles<T::kBlockM, T::kBlockN> tiles(p, w);
  const int32_t count = tiles.count;
  const int tid = int(threadIdx.x), wg = tid / 128;
  const uint32_t raw = ptx::smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  const uint32_t sk = base + T::kOffK, sv = base + T::kOffV, bars = base + T::kOffBar;
  const uint32_t q_full = bars;
  auto k_full = [&](int s) { return bars + 8u * uint32_t(1 + s); };
  auto v_full = [&](int s) { return bars + 8u * uint32_t(1 + T::kStages + s); };
  auto empty = [&](int s) { return bars + 8u * uint32_t(1 + 2 * T::kStages + s); };
  if (tid == 0) {
    tma::barrier_init(q_full, 1);
    for (int s = 0; s < T::kStages; ++s) {
      tma::barrier_init(k_full(s), 1);
      tma::barrier_init(v_full(s), 1);
      tma::barrier_init(empty(s), 256);  // every consumer thread arrives
    }
    tma::fence_barrier_init();
  }
  __syncthreads();

  if (wg == 0) {  // producer
    tma::release_registers<T::kProducerRegs>();
    if (tid == 0) {
      tma::prefetch_map(&tq);
      tma::prefetch_map(&tk);
      tma::prefetch_map(&tv);
      const int32_t kv_head = w.head / p.group;
      tma::arrive_expect_tx(q_full, T::kBytesQ);
      for (int cb = 0; cb < T::kHeadDimQK / 64; ++cb) {
        tma::load_4d(base + uint32_t(cb) * T::kBlockBytes, &tq, q_full, cb * 64, w.head,
                     w.q_tile * T::kBlockM, w.batch);
      }
      for (int32_t n = 0; n < count; ++n) {
        const int s = n % T::kStages;
        // The stage's previous tile (n - kStages) is released by the consumers' arrivals:
        // that is completion number n / kStages - 1 of its empty barrier.
        if (n >= T::kStages) tma::wait(empty(s), uint32_t((n / T::kStages - 1) & 1));
        const int32_t k0 = tiles[n].index * T::kBlockN;
        tma::arrive_expect_tx(k_full(s), T::kBytesK);
        for (int cb = 0; cb < T::kHeadDimQK / 64; ++cb) {
          tma::load_4d(sk + uint32_t(s) * T::kBytesK + uint32_t(cb) * T::kBlockBytes, &tk,
                       k_full(s), cb * 64, kv_head, k0, w.batch);
        }
        tma::arrive_expect_tx(v_full(s), T::kBytesV);
        for (int cb = 0; cb < T::kHeadDimV / 64; ++cb) {
          tma::load_4d(sv + uint32_t(s) * T::kBytesV + uint32_t(cb) * T::kBlockBytes, &tv,
                       v_full(s), cb * 64, kv_head, k0, w.batch);
        }
      }
    }
    return;
  }

  tma::claim_registers<T::kConsumerRegs>();
  const int ctid = tid - 128, cw = ctid / 128, lane = ctid & 31, warp = ctid >> 5;
  const int warp_row0 = warp * 16;  // consumer warpgroup cw owns rows [64 cw, 64 cw + 64)
  const float sl2 = p.transform ? 1.0f : p.scale_log2;
  float o[1][T::kDTiles][4];
  zero_o<T>(o);
  OnlineSoftmax<T> softmax;
  tma::wait(q_full, 0);
  for (int32_t n = 0; n < count; ++n) {
    const int s = n % T::kStages;
    const uint32_t phase = uint32_t((n / T::kStages) & 1);
    const KeyTileRef tile = tiles[n];
    tma::wait(k_full(s), phase);
    float sc[1][T::kNTiles][4];
    issue_qk_sm90<T>(sc, base, sk + uint32_t(s) * T::kBytesK, cw);
    wait_qk_sm90<T>(sc);
    if (p.transform) transform_scores<T>(sc, p, w, tile.index * T::kBlockN, warp_row0, lane);
    if (tile.slot != -1) mask_scores<T>(sc, p, w, tile, warp_row0, lane);
    softmax.update(sc, o, sl2);
    tma::wait(v_full(s), phase);
    gemm_pv_sm90<T>(o, sc, sv + uint32_t(s) * T::kBytesV);  // waits for its products
    tma::arrive(empty(s));
  }
  write_output<T>(o, softmax, p, w, sl2, warp_row0, lane);
#else
  __trap();  // built without sm_90a code for this device: the dispatcher never launches it
#endif
}

}  // namespace polyhead::cuda
