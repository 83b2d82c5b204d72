#include "cuda/tma/tensor_map.h"

#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled_v12000
#include <cuda_runtime_api.h>

#include <string>

#include "polyhead/error.h"

namespace polyhead::cuda {
namespace {

using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

EncodeTiled encoder() {
  static const EncodeTiled fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000,
                                                           cudaEnableDefault, &found);
    POLYHEAD_CHECK(e == cudaSuccess && found == cudaDriverEntryPointSuccess && p != nullptr,
                   "cuda backend: the driver has no cuTensorMapEncodeTiled (TMA needs a CUDA 12 ",
                   "driver): ", cudaGetErrorString(e));
    return reinterpret_cast<EncodeTiled>(p);
  }();
  return fn;
}

}  // namespace

CUtensorMap make_tensor_map_sw128(const TmaTensor& t) {
  POLYHEAD_CHECK(t.rank >= 1 && t.rank <= 5, "cuda backend: a TMA tensor has 1 to 5 dimensions, ",
                 "not ", t.rank);
  POLYHEAD_CHECK(reinterpret_cast<uintptr_t>(t.base) % 16 == 0,
                 "cuda backend: a TMA tensor's address must be 16-byte aligned");
  for (int d = 0; d < t.rank; ++d) {
    POLYHEAD_CHECK(t.dims[size_t(d)] >= 1 && t.dims[size_t(d)] <= (uint64_t(1) << 32),
                   "cuda backend: TMA dimension ", d, " has ", t.dims[size_t(d)],
                   " elements; allowed 1 to 2^32");
    POLYHEAD_CHECK(t.box[size_t(d)] >= 1 && t.box[size_t(d)] <= 256, "cuda backend: TMA box ",
                   "dimension ", d, " is ", t.box[size_t(d)], " elements; allowed 1 to 256");
    if (d > 0) {
      const uint64_t s = t.strides[size_t(d - 1)];
      POLYHEAD_CHECK(s % 16 == 0 && s < (uint64_t(1) << 40), "cuda backend: TMA stride of ",
                     "dimension ", d, " is ", s, " bytes; it must be a multiple of 16 below 2^40");
    }
  }
  POLYHEAD_CHECK(t.box[0] * 2 <= 128, "cuda backend: with the 128-byte swizzle a TMA box row ",
                 "holds at most 64 16-bit elements, not ", t.box[0]);
  std::array<cuuint64_t, 5> dims{};
  std::array<cuuint64_t, 4> strides{};
  std::array<cuuint32_t, 5> box{}, unit{};
  for (int d = 0; d < t.rank; ++d) {
    dims[size_t(d)] = t.dims[size_t(d)];
    box[size_t(d)] = t.box[size_t(d)];
    unit[size_t(d)] = 1;
    if (d > 0) strides[size_t(d - 1)] = t.strides[size_t(d - 1)];
  }
  CUtensorMap map{};
  const CUresult r =
      encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_UINT16, cuuint32_t(t.rank), const_cast<void*>(t.base),
                dims.data(), strides.data(), box.data(), unit.data(), CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  POLYHEAD_CHECK(r == CUDA_SUCCESS, "cuda backend: cuTensorMapEncodeTiled failed with CUresult ",
                 int(r));
  return map;
}

}  // namespace polyhead::cuda
