// GPU discovery for `polyhead info` and the cuda backend.
#pragma once

#include <string>
#include <vector>

namespace polyhead::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int multiprocessors = 0;
  double memory_gib = 0;
  int probe_arch = 0;       // __CUDA_ARCH__ of the kernel image that ran; 0 if none ran
  std::string probe_error;  // why the probe kernel did not run
};

// Every visible device; empty (with `error` set) when the driver or a GPU is missing.
std::vector<DeviceInfo> devices(std::string* error);

// Launches the probe kernel on `device` and returns the __CUDA_ARCH__ it was compiled for.
// Throws Error if no kernel image of this build runs there.
int probe_kernel_arch(int device);

}  // namespace polyhead::cuda
