// The smallest kernel of the build: it reports which of the compiled architectures
// (sm_80, sm_90a) the device actually runs, so `polyhead info` can tell a missing image from
// a missing GPU.
#include "cuda/cuda_check.h"
#include "cuda/device_info.h"

namespace polyhead::cuda {
namespace {

__global__ void probe(int* out) {
#ifdef __CUDA_ARCH__
  if (threadIdx.x == 0 && blockIdx.x == 0) *out = __CUDA_ARCH__;
#endif
}

// Frees a device allocation on scope exit.
struct DeviceBuffer {
  int* ptr = nullptr;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

}  // namespace

int probe_kernel_arch(int device) {
  POLYHEAD_CUDA_CHECK(cudaSetDevice(device));
  DeviceBuffer buf;
  POLYHEAD_CUDA_CHECK(cudaMalloc(&buf.ptr, sizeof(int)));
  POLYHEAD_CUDA_CHECK(cudaMemset(buf.ptr, 0, sizeof(int)));
  probe<<<1, 32>>>(buf.ptr);
  POLYHEAD_CUDA_CHECK_LAUNCH("probe");
  int arch = 0;
  POLYHEAD_CUDA_CHECK(cudaMemcpy(&arch, buf.ptr, sizeof(int), cudaMemcpyDeviceToHost));
  return arch;
}

std::vector<DeviceInfo> devices(std::string* error) {
  std::vector<DeviceInfo> out;
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess) {
    if (error) *error = std::string(cudaGetErrorName(st)) + ": " + cudaGetErrorString(st);
    return out;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    DeviceInfo info;
    info.index = d;
    info.name = prop.name;
    info.cc_major = prop.major;
    info.cc_minor = prop.minor;
    info.multiprocessors = prop.multiProcessorCount;
    info.memory_gib = double(prop.totalGlobalMem) / double(1ull << 30);
    try {
      info.probe_arch = probe_kernel_arch(d);
    } catch (const Error& e) {
      info.probe_error = e.what();
    }
    out.push_back(info);
  }
  if (out.empty() && error) *error = "no CUDA device";
  return out;
}

}  // namespace polyhead::cuda
