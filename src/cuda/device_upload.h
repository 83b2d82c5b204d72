// Small per-call inputs (host cu_seqlens, compiled block maps) staged into one host buffer and
// uploaded with a single stream-ordered allocation and copy; freed on the same stream when the
// call's work is queued, so nothing synchronizes the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/cuda_check.h"

namespace polyhead::cuda {

class DeviceUpload {
 public:
  explicit DeviceUpload(cudaStream_t stream) : stream_(stream) {}
  DeviceUpload(const DeviceUpload&) = delete;
  DeviceUpload& operator=(const DeviceUpload&) = delete;
  ~DeviceUpload() {
    if (device_ != nullptr) cudaFreeAsync(device_, stream_);  // errors surface at the next call
  }

  // Stages `n` elements; returns their byte offset in the upload (16-byte aligned).
  template <typename T>
  size_t append(const T* data, size_t n) {
    const size_t offset = (host_.size() + 15) / 16 * 16;
    host_.resize(offset + n * sizeof(T));
    if (n > 0) std::memcpy(host_.data() + offset, data, n * sizeof(T));
    return offset;
  }
  template <typename T>
  size_t append(const std::vector<T>& v) {
    return append(v.data(), v.size());
  }

  // Allocates on the stream and queues the copy; returns the device base (nullptr if empty).
  // A copy from pageable memory is staged by the driver before this returns, so the host
  // buffer may go away afterwards.
  char* upload() {
    if (host_.empty()) return nullptr;
    POLYHEAD_CUDA_CHECK(cudaMallocAsync(&device_, host_.size(), stream_));
    POLYHEAD_CUDA_CHECK(
        cudaMemcpyAsync(device_, host_.data(), host_.size(), cudaMemcpyHostToDevice, stream_));
    return static_cast<char*>(device_);
  }

 private:
  cudaStream_t stream_;
  std::vector<unsigned char> host_;
  void* device_ = nullptr;
};

// Makes `device` current for a scope and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    POLYHEAD_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) POLYHEAD_CUDA_CHECK(cudaSetDevice(device));
    changed_ = previous_ != device;
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace polyhead::cuda
