// The CUDA runtime side of the tests: device memory and copies for run_on_backend("cuda").
// Implemented in device.cpp, which is built only when POLYHEAD_CUDA is ON; testing.cpp calls
// it only under POLYHEAD_HAVE_CUDA.
#pragma once

#include <cstddef>
#include <string>

namespace polyhead::testing::device {

// Empty when a GPU can be used; otherwise why not (no driver, no device, ...).
std::string unavailable_reason();

// Device memory; errors of the CUDA runtime throw std::runtime_error naming the call.
class Buffer {
 public:
  explicit Buffer(size_t bytes);
  ~Buffer();
  Buffer(Buffer&& other) noexcept : ptr_(other.ptr_), bytes_(other.bytes_) { other.ptr_ = nullptr; }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer& operator=(Buffer&&) = delete;

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  void upload(const void* host);    // host -> device, bytes() bytes
  void download(void* host) const;  // device -> host, bytes() bytes

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Waits for the device and reports any asynchronous error.
void synchronize();
// The index of the current device.
int current_device();

}  // namespace polyhead::testing::device
