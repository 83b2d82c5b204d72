// The fp32 forward kernel: plain fp32 FMA (no tensor cores), so that fp32 inputs meet
// DESIGN.md's 1e-5 relative-L2 tolerance (tf32 tensor cores round operands to 10 mantissa
// bits, about 5e-4). Same work split, key-tile sources and masks as the tensor-core kernel
// (fwd/work.cuh), its own tile of 32 query rows x 32 keys; the arithmetic is simt_rows
// (fwd/simt_rows.cuh).
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/fwd/launch.h"
#include "cuda/fwd/params.h"
#include "cuda/fwd/simt_rows.cuh"
#include "cuda/fwd/tile_size.h"
#include "cuda/fwd/work.cuh"

namespace polyhead::cuda {
namespace {

constexpr int kM = kSimtBlockM, kN = kSimtBlockN;
static_assert(kM == kSimtRows && kN == 32 && kSimtWarps * 32 == kSimtThreads,
              "one simt_rows call per 32 x 32 tile");

__global__ void __launch_bounds__(kSimtThreads)
    fwd_simt_kernel(const __grid_constant__ FwdParams p, int dqk, int dv) {
  extern __shared__ float smem_f[];
  WorkTile w;
  if (!resolve_work<kM>(p, w)) return;
  simt_rows<float, kM, kN>(p, w, 0, dqk, dv, smem_f);
}

}  // namespace

void launch_fwd_simt_f32(const FwdParams& p, int head_dim_qk, int head_dim_v, cudaStream_t stream) {
  if (p.q_tiles == 0) return;
  const size_t smem = sizeof(float) * size_t(simt_rows_smem_floats(head_dim_qk, head_dim_v));
  if (smem > 48 * 1024) {
    POLYHEAD_CUDA_CHECK(cudaFuncSetAttribute(
        fwd_simt_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  }
  const dim3 grid(unsigned(p.q_tiles), unsigned(p.heads_q),
                  p.cu_seqlens_q ? 1u : unsigned(p.batch));
  fwd_simt_kernel<<<grid, kSimtThreads, smem, stream>>>(p, head_dim_qk, head_dim_v);
  POLYHEAD_CUDA_CHECK_LAUNCH("fwd_simt_kernel");
}

}  // namespace polyhead::cuda
