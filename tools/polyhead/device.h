// The CUDA runtime side of the program: copies of a problem's tensors on the GPU for backends
// that need device memory (`check --backend cuda`, `bench --verify --backend cuda`). Implemented
// in device_cuda.cpp when POLYHEAD_CUDA is ON, otherwise by device_none.cpp, which says so.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "polyhead/problem.h"

namespace polyhead::cli {

// Whether this build holds the CUDA runtime code.
bool device_support_built();
// Whether `backend` reads its tensors from device memory (today: "cuda").
bool backend_needs_device(std::string_view backend);

// q, k, v, o, lse, ALiBi slopes and sinks of a host problem copied to GPU 0 (o and lse with the
// host's current contents, e.g. NaN poison); cu_seqlens and mask tensors stay on the host, where
// the cuda backend compiles block maps from them. Throws UsageError when no GPU can be used or a
// CUDA call fails.
class DeviceMirror {
 public:
  explicit DeviceMirror(const AttentionProblem& host);
  ~DeviceMirror();
  DeviceMirror(const DeviceMirror&) = delete;
  DeviceMirror& operator=(const DeviceMirror&) = delete;

  const AttentionProblem& problem() const { return problem_; }
  // Waits for the device and copies o (and lse) into the host problem's views.
  void copy_outputs_back(const AttentionProblem& host) const;

 private:
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
  AttentionProblem problem_;
};

}  // namespace polyhead::cli
