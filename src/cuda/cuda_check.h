// CUDA error checking: every runtime call and launch surfaces failures as polyhead::Error.
#pragma once

#include <cuda_runtime_api.h>

#include "polyhead/error.h"

#define POLYHEAD_CUDA_CHECK(call)                                                 \
  do {                                                                            \
    const cudaError_t polyhead_status_ = (call);                                  \
    if (polyhead_status_ != cudaSuccess) [[unlikely]]                             \
      ::polyhead::detail::throw_error("CUDA error in ", #call, ": ",              \
                                      cudaGetErrorName(polyhead_status_), " (",   \
                                      cudaGetErrorString(polyhead_status_), ")"); \
  } while (0)

// After a kernel launch: reports launch-configuration errors without synchronizing.
#define POLYHEAD_CUDA_CHECK_LAUNCH(what) POLYHEAD_CUDA_CHECK(cudaPeekAtLastError())
