// Split-KV's second step (params.h): folds the kv_splits partial results of every logical row
// into the output and LSE tensors, with the sinks. Compiled for every architecture.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/fwd/params.h"
#include "polyhead/tensor.h"

namespace polyhead::cuda {

// Launches the combine on `stream` for a problem of Dv <= 256 whose output has dtype `out`
// (bf16, f16 or f32, as p.o_f32 says).
void launch_split_combine(const FwdParams& p, int head_dim_v, DType out, cudaStream_t stream);

}  // namespace polyhead::cuda
