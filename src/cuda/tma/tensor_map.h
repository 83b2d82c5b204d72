// TMA tensor maps (CUtensorMap) for Hopper kernels that load tiles with cp.async.bulk.tensor:
// the encoder (the driver's cuTensorMapEncodeTiled, found at run time through the runtime, so
// nothing links libcuda) with every TMA rule checked first and named in the error.
//
// Used by the warp-specialized forward kernel (fwd_ws/tensor_maps.h builds its views);
// tests/cuda_kernels/tma_test.cu checks the copies on the GPU, tensor_map_test.cpp the rules
// on the host.
#pragma once

#include <cuda.h>  // CUtensorMap and its enums (types only)

#include <array>
#include <cstdint>

namespace polyhead::cuda {

// A strided tensor of 16-bit elements as TMA sees it: up to 5 dimensions, innermost first
// (dimension 0 is contiguous), and the box one copy moves.
struct TmaTensor {
  const void* base = nullptr;         // 16-byte aligned
  int rank = 0;                       // 1..5
  std::array<uint64_t, 5> dims{};     // elements per dimension, each in [1, 2^32]
  std::array<uint64_t, 4> strides{};  // bytes from index i to i + 1 of dimension d + 1,
                                      // multiples of 16, below 2^40
  std::array<uint32_t, 5> box{};      // elements per dimension of one copy, each in [1, 256]
};

// The tensor map of `t` with the 128-byte swizzle (row r's 16-byte chunk j lands at chunk
// j ^ (r % 8), the layout of fwd_sm90/mainloop.cuh), so box[0] is at most 64 elements.
// Out-of-bounds box elements are filled with zeros. Throws polyhead::Error.
CUtensorMap make_tensor_map_sw128(const TmaTensor& t);

}  // namespace polyhead::cuda
