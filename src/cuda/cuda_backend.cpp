// The `cuda` backend: GPU kernel families chosen by compute capability. The kernel families
// themselves (forward, Hopper forward, backward, decode) live in subfolders and register
// their support here as they land; until a family supports a problem, supports() says so.
#include <string>

#include "core/backend.h"
#include "cuda/device_info.h"
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
    return {"cuda", true, desc + "; no attention kernel family is built yet"};
  }

  Status supports(const AttentionProblem& p, const ProblemShape&) const override {
    if (p.q.device.type != DeviceType::cuda) {
      return Status::no("tensors are on " + to_string(p.q.device) +
                        "; the cuda backend needs GPU memory");
    }
    return Status::no("no CUDA attention kernel family is built yet");
  }

  void forward(const AttentionProblem&, const ProblemShape&, const RunOptions&) const override {
    POLYHEAD_FAIL("backend 'cuda': no CUDA attention kernel family is built yet");
  }
};

}  // namespace

const Backend* cuda_backend() {
  static const CudaBackend backend;
  return &backend;
}

}  // namespace polyhead::detail
