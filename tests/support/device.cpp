#include "support/device.h"

#include <cuda_runtime_api.h>

#include <stdexcept>

namespace polyhead::testing::device {
namespace {

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error in ") + call + ": " +
                             cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

}  // namespace

std::string unavailable_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return std::string("no usable GPU: cudaGetDeviceCount failed with ") +
           cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  }
  if (count == 0) return "no GPU is visible";
  return "";
}

Buffer::Buffer(size_t bytes) : bytes_(bytes) {
  check(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), "cudaMalloc");
}

Buffer::~Buffer() {
  if (ptr_) cudaFree(ptr_);
}

void Buffer::upload(const void* host) {
  check(cudaMemcpy(ptr_, host, bytes_, cudaMemcpyHostToDevice), "cudaMemcpy (to device)");
}

void Buffer::download(void* host) const {
  check(cudaMemcpy(host, ptr_, bytes_, cudaMemcpyDeviceToHost), "cudaMemcpy (to host)");
}

void synchronize() {
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

int current_device() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  return dev;
}

}  // namespace polyhead::testing::device
