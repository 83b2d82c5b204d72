// Builds without POLYHEAD_CUDA: no device copies; the cuda backend is unavailable anyway.
#include "args.h"
#include "device.h"

namespace polyhead::cli {

struct DeviceMirror::Buffers {};

bool device_support_built() {
  return false;
}

bool backend_needs_device(std::string_view backend) {
  return backend == "cuda";
}

DeviceMirror::DeviceMirror(const AttentionProblem&) {
  throw UsageError("this polyhead was built without CUDA (POLYHEAD_CUDA=OFF): no device copies");
}

DeviceMirror::~DeviceMirror() = default;

void DeviceMirror::copy_outputs_back(const AttentionProblem&) const {}

}  // namespace polyhead::cli
