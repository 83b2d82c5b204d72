// Launch of the warp-specialized Hopper kernel (fwd_ws/kernel.cuh): the TMA tensor maps of Q,
// K and V from the parameters, and the grid. Each generated instance file
// (build/src/cuda/fwd_instances/fwd_ws_<dtype>_<dqk>x<dv>.cu, compiled for sm_90a only)
// includes this and instantiates launch_fwd_ws for one configuration.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.cuh"
#include "cuda/fwd_ws/epilogue.cuh"
#include "cuda/fwd_ws/exact_items.cuh"
#include "cuda/fwd_ws/kernel.cuh"
#include "cuda/fwd_ws/persistent.cuh"
#include "cuda/fwd_ws/tensor_maps.h"
#include "cuda/tma/tensor_map.h"

namespace polyhead::cuda {

// setmaxnreg moves registers within the CTA's pool, which is what the CTA was launched with
// (FwdWsTraits, kernel.cuh): a kernel that ptxas gave fewer registers per thread than its
// warpgroups claim would wait forever in setmaxnreg.inc. Checked once per kernel, against the
// count ptxas chose, so that a build which changes it (-maxrregcount, another ptxas) fails
// with an error instead of hanging the device.
template <typename T, auto kKernel>
void check_register_pool(const char* name) {
  static const int regs = [] {
    cudaFuncAttributes a{};
    POLYHEAD_CUDA_CHECK(cudaFuncGetAttributes(&a, kKernel));
    return a.numRegs;
  }();
  constexpr int kNeeded = 128 * T::kProducerRegs + T::kThreads * T::kConsumerRegs;
  POLYHEAD_CHECK(regs * T::kCtaThreads >= kNeeded, "cuda backend: ", name, " was compiled with ",
                 regs, " registers per thread, but its warpgroups claim ", kNeeded,
                 " registers in all (", T::kCtaThreads, " threads need at least ",
                 (kNeeded + T::kCtaThreads - 1) / T::kCtaThreads,
                 " each); rebuild without a register cap on the sm_90a kernels");
}

// One CTA per (query tile, head, sequence); `to` is O's tensor map where p.o_tma (any map
// otherwise: the kernel does not read it).
template <typename T, bool kPatched>
void launch_ws_one_per_item(const FwdParams& p, const CUtensorMap& tq, const CUtensorMap& tk,
                            const CUtensorMap& tv, const CUtensorMap& to, int64_t batch,
                            cudaStream_t stream) {
  auto kernel = fwd_ws_kernel<T, kPatched>;
  check_register_pool<T, fwd_ws_kernel<T, kPatched>>("fwd_ws_kernel");
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  const dim3 grid{unsigned(p.q_tiles), unsigned(p.heads_q), unsigned(batch)};
  kernel<<<grid, T::kCtaThreads, T::kSmemBytes, stream>>>(p, tq, tk, tv, to);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_kernel");
}

template <typename T, bool kPatched>
void launch_ws_kernels(const FwdParams& p, const CUtensorMap& tq, const CUtensorMap& tk,
                       const CUtensorMap& tv, const CUtensorMap& to, int64_t batch,
                       cudaStream_t stream) {
  if (p.redo_count == nullptr) {
    launch_ws_one_per_item<T, kPatched>(p, tq, tk, tv, to, batch, stream);
    return;
  }
  // Persistent: kMinBlocksPerSm CTAs per SM (fewer with fewer items, or max_ctas), then the
  // exact pass over the items it listed, with at most two CTAs per SM of 128 threads.
  int device = 0, sms = 0;
  POLYHEAD_CUDA_CHECK(cudaGetDevice(&device));
  POLYHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int resident = sms * T::kMinBlocksPerSm;
  const int64_t cap = p.max_ctas > 0 ? std::min(resident, p.max_ctas) : resident;
  const unsigned ctas = unsigned(std::min<int64_t>(p.work_items, cap));
  if (ctas == 0) return;
  auto kernel = fwd_ws_persistent_kernel<T, kPatched>;
  check_register_pool<T, fwd_ws_persistent_kernel<T, kPatched>>("fwd_ws_persistent_kernel");
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  kernel<<<ctas, T::kCtaThreads, T::kSmemBytes, stream>>>(p, tq, tk, tv);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_persistent_kernel");
  auto exact = fwd_ws_exact_items_kernel<T, kPatched>;
  const int smem = int(sizeof(float)) * simt_rows_smem_floats(T::kHeadDimQK, T::kHeadDimV);
  POLYHEAD_CUDA_CHECK(
      cudaFuncSetAttribute(exact, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  // A programmatic dependent launch: the exact pass's CTAs are launched while the persistent
  // CTAs run and wait in griddepcontrol.wait for that grid's completion and memory, instead of
  // the stream's full launch gap after it.
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(2 * sms));
  config.blockDim = dim3(kSimtThreads);
  config.dynamicSmemBytes = size_t(smem);
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  POLYHEAD_CUDA_CHECK(cudaLaunchKernelEx(&config, exact, p));
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_ws_exact_items_kernel");
}

// O's tensor map for the TMA stores of the one-CTA-per-item kernel (fwd_ws/epilogue.cuh), from
// `describe()` (O's TmaTensor), where O suits one: the rows the staged epilogue stores 16 bytes
// at a time (o_rows_vec16), and a layout make_tensor_map_sw128 accepts. Sets p.o_tma; elsewhere
// (the persistent form, other layouts) the threads store O and the kernel never reads the map
// returned, `unused`.
template <typename Describe>
CUtensorMap o_store_map(FwdParams& p, const CUtensorMap& unused, Describe describe) {
  p.o_tma = p.redo_count == nullptr && o_rows_vec16(p);
  if (!p.o_tma) return unused;
  try {
    return make_tensor_map_sw128(describe());
  } catch (const Error&) {  // a layout TMA cannot describe: the threads store O
    p.o_tma = false;
    return unused;
  }
}

// Patch order (rank-2 grids, batched): the three tensor maps, one box per (sub-)patch, and the
// launch; kPersistent: whether the persistent form is instantiated for T.
template <typename T, bool kPersistent>
void launch_ws_patched(const FwdParams& p, cudaStream_t stream) {
  // One (sub-)patch per key tile, one 128-position patch per query tile: the dispatcher chose
  // the order for this tile (choose_patch_order).
  POLYHEAD_CHECK(p.order.patch_bits == 7 && (1 << p.order.sub_bits) == T::kBlockN,
                 "cuda backend: the warp-specialized kernel's ", T::kBlockN,
                 "-key tiles do not match the patch order's ", 1 << p.order.sub_bits,
                 "-token (sub-)patches");
  const int64_t heads_kv = p.heads_q / p.group;
  const CUtensorMap tq =
      make_tensor_map_sw128(patch_tensor(p.q, p.order, p.batch, p.heads_q, T::kHeadDimQK,
                                         p.q_batch_stride, p.q_row_stride, p.q_head_stride));
  const CUtensorMap tk =
      make_tensor_map_sw128(patch_tensor(p.k, p.order, p.batch, heads_kv, T::kHeadDimQK,
                                         p.k_batch_stride, p.k_row_stride, p.k_head_stride));
  const CUtensorMap tv =
      make_tensor_map_sw128(patch_tensor(p.v, p.order, p.batch, heads_kv, T::kHeadDimV,
                                         p.v_batch_stride, p.v_row_stride, p.v_head_stride));
  // O by TMA stores, one box per consumer warpgroup: the 64 positions of its rows.
  FwdParams pw = p;
  const CUtensorMap to = o_store_map(pw, tq, [&] {
    return patch_tensor(p.o, p.order, p.batch, p.heads_q, T::kHeadDimV, p.o_batch_stride,
                        p.o_row_stride, p.o_head_stride, 64);
  });
  if constexpr (kPersistent) {
    launch_ws_kernels<T, true>(pw, tq, tk, tv, to, p.batch, stream);
  } else {
    POLYHEAD_CHECK(p.redo_count == nullptr,
                   "cuda backend: the neighborhood tiles of the warp-specialized kernel have no "
                   "persistent form");
    launch_ws_one_per_item<T, true>(pw, tq, tk, tv, to, p.batch, stream);
  }
}

template <DType kDtype, int Dqk, int Dv>
void launch_fwd_ws(const FwdParams& p, cudaStream_t stream) {
  using T = FwdWsTraits<typename ElemOf<kDtype>::type, Dqk, Dv>;
  if (p.q_tiles == 0) return;
  if (p.order.patched) {
    launch_ws_patched<T, true>(p, stream);
    return;
  }
  // Varlen: one "batch" of all tokens (dimension 1 of the tensors); rows past a sequence's
  // end belong to the next one, and the kernel masks or drops them as for a batch.
  const int64_t heads_kv = p.heads_q / p.group;
  const int64_t batch = p.cu_seqlens_q != nullptr ? 1 : p.batch;
  const CUtensorMap tq = make_tensor_map_sw128(
      token_rows_tensor(p.q, batch, p.rows_q, p.heads_q, Dqk, p.q_batch_stride, p.q_row_stride,
                        p.q_head_stride, 128));
  const CUtensorMap tk =
      make_tensor_map_sw128(token_rows_tensor(p.k, batch, p.rows_k, heads_kv, Dqk, p.k_batch_stride,
                                              p.k_row_stride, p.k_head_stride, T::kBlockN));
  const CUtensorMap tv =
      make_tensor_map_sw128(token_rows_tensor(p.v, batch, p.rows_k, heads_kv, Dv, p.v_batch_stride,
                                              p.v_row_stride, p.v_head_stride, T::kBlockN));
  // O by TMA stores, one box per consumer warpgroup: its 64 rows.
  FwdParams pw = p;
  const CUtensorMap to = o_store_map(pw, tq, [&] {
    return token_rows_tensor(p.o, batch, p.rows_q, p.heads_q, Dv, p.o_batch_stride, p.o_row_stride,
                             p.o_head_stride, 64);
  });
  launch_ws_kernels<T, false>(pw, tq, tk, tv, to, batch, stream);
}

// Rank-2 neighborhoods in patch order with the pair's neighborhood tiles (FwdWsNaTile,
// tile_size.h: 64-key tiles over 8 x 8 sub-patches), one CTA per item.
template <DType kDtype, int Dqk, int Dv>
void launch_fwd_ws_na(const FwdParams& p, cudaStream_t stream) {
  if constexpr (kHasWsNaTile<Dqk, Dv>) {
    using T = FwdWsTraits<typename ElemOf<kDtype>::type, Dqk, Dv, FwdWsNaTile<Dqk, Dv>>;
    if (p.q_tiles == 0) return;
    POLYHEAD_CHECK(
        p.order.patched,
        "cuda backend: the warp-specialized kernel's neighborhood tiles need patch order");
    launch_ws_patched<T, false>(p, stream);
  } else {
    POLYHEAD_CHECK(false, "cuda backend: no warp-specialized neighborhood tiles for head dims ",
                   Dqk, ", ", Dv);
  }
}

}  // namespace polyhead::cuda
