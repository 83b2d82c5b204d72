// Host-side entry points of the forward kernel families: one launch function per compiled
// configuration (instantiated one per .cu file from the table in src/cuda/CMakeLists.txt).
// Plain C++: no kernel code, so the dispatcher compiles with the host compiler.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/fwd/params.h"
#include "polyhead/dtype.h"

namespace polyhead::cuda {

// Tensor-core kernel for 16-bit inputs (fwd/kernel.cuh).
template <DType kDtype, int Dqk, int Dv>
void launch_fwd(const FwdParams& p, cudaStream_t stream);

// Hopper kernel for 16-bit inputs (fwd_sm90/kernel.cuh), compiled for sm_90a only.
template <DType kDtype, int Dqk, int Dv>
void launch_fwd_sm90(const FwdParams& p, cudaStream_t stream);

// Warp-specialized Hopper kernel for 16-bit inputs (fwd_ws/kernel.cuh: TMA producer warp), the
// same pairs as launch_fwd_sm90, compiled for sm_90a only. Q, K, V must suit TMA (dispatch.cpp).
template <DType kDtype, int Dqk, int Dv>
void launch_fwd_ws(const FwdParams& p, cudaStream_t stream);
// The same kernel with the pair's neighborhood tiles (FwdWsNaTile, tile_size.h), for rank-2
// neighborhoods in patch order; instantiated for the pairs that have them.
template <DType kDtype, int Dqk, int Dv>
void launch_fwd_ws_na(const FwdParams& p, cudaStream_t stream);

// SIMT kernel for fp32 inputs, any Dqk, Dv <= 256 that are multiples of 32 (fwd_simt/).
void launch_fwd_simt_f32(const FwdParams& p, int head_dim_qk, int head_dim_v, cudaStream_t stream);

}  // namespace polyhead::cuda
