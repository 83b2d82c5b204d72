// Device copies of host problems (device.h), on the CUDA runtime; built with POLYHEAD_CUDA.
#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "args.h"
#include "device.h"
#include "polyhead/dtype.h"

namespace polyhead::cli {
namespace {

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw UsageError(std::string("CUDA error in ") + call + ": " + cudaGetErrorName(status) + " (" +
                     cudaGetErrorString(status) + ")");
  }
}

// Elements between a view's first and last element, plus one (strides must be >= 0).
int64_t span(const TensorView& t) {
  int64_t n = 1;
  for (int d = 0; d < t.rank; ++d) {
    if (t.shape[d] == 0) return 0;
    if (t.stride[d] < 0)
      throw UsageError("device copies need non-negative strides: " + t.describe());
    n += (t.shape[d] - 1) * t.stride[d];
  }
  return n;
}

}  // namespace

struct DeviceMirror::Buffers {
  std::vector<void*> pointers;
  ~Buffers() {
    for (void* p : pointers) cudaFree(p);
  }
  TensorView copy(const TensorView& host) {
    const size_t bytes = size_t(span(host) * dtype_size(host.dtype));
    void* p = nullptr;
    check(cudaMalloc(&p, bytes == 0 ? 1 : bytes), "cudaMalloc");
    pointers.push_back(p);
    if (bytes > 0) check(cudaMemcpy(p, host.data, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    TensorView d = host;
    d.data = p;
    d.device = Device{DeviceType::cuda, 0};
    return d;
  }
};

bool device_support_built() {
  return true;
}

bool backend_needs_device(std::string_view backend) {
  return backend == "cuda";
}

DeviceMirror::DeviceMirror(const AttentionProblem& host)
    : buffers_(std::make_unique<Buffers>()), problem_(host) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw UsageError("no usable GPU for the device copies of the inputs");
  }
  check(cudaSetDevice(0), "cudaSetDevice");
  problem_.q = buffers_->copy(host.q);
  problem_.k = buffers_->copy(host.k);
  problem_.v = buffers_->copy(host.v);
  problem_.o = buffers_->copy(host.o);
  if (host.lse) problem_.lse = buffers_->copy(*host.lse);
  if (host.alibi_slopes) problem_.alibi_slopes = buffers_->copy(*host.alibi_slopes);
  if (host.sinks) problem_.sinks = buffers_->copy(*host.sinks);
}

DeviceMirror::~DeviceMirror() = default;

void DeviceMirror::copy_outputs_back(const AttentionProblem& host) const {
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const auto back = [](const TensorView& dev, const TensorView& to) {
    const size_t bytes = size_t(span(to) * dtype_size(to.dtype));
    if (bytes > 0)
      check(cudaMemcpy(to.data, dev.data, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  };
  back(problem_.o, host.o);
  if (host.lse) back(*problem_.lse, *host.lse);
}

}  // namespace polyhead::cli
