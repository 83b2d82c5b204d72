// The `cuda` backend: GPU kernel families chosen by compute capability. Today one family runs
// the forward pass: a tensor-core kernel for f16/bf16 (fwd/) and an fp32 SIMT kernel
// (fwd_simt/), both dispatched by fwd/dispatch.cpp.
#include <string>

#include "core/backend.h"
#include "cuda/device_info.h"
#include "cuda/fwd/dispatch.h"
#include "polyhead/error.h"

namespace polyhead::detail {
namespace {

class CudaBackend final : public Backend {
 public:
  std::string_view name() const override { return "cuda"; }

  BackendInfo info() const override {
    std::string error;
    const auto devs = cuda::devices(&error);
    if (devs.empty()) return {"cuda", false, "no usable GPU: " + error};
    std::string desc;
    for (const auto& d : devs) {
      if (!desc.empty()) desc += "; ";
      desc += "cuda:" + std::to_string(d.index) + " " + d.name + " (sm_" +
              std::to_string(d.cc_major) + std::to_string(d.cc_minor) + ")";
    }
    std::string kernels;
    for (const std::string& c : cuda::fwd_configurations()) {
      kernels += (kernels.empty() ? "" : "; ") + c;
    }
    return {"cuda", true, desc + "; forward kernels: " + kernels};
  }

  Status supports(const AttentionProblem& p, const ProblemShape& s) const override {
    return cuda::fwd_supports(p, s);
  }

  void forward(const AttentionProblem& p, const ProblemShape& s,
               const RunOptions& options) const override {
    cuda::fwd_run(p, s, options.stream);
  }
};

}  // namespace

const Backend* cuda_backend() {
  static const CudaBackend backend;
  return &backend;
}

}  // namespace polyhead::detail
