// Builds without POLYHEAD_CUDA: GPU timing is unavailable (the cuda backend is too).
#include "bench.h"

namespace polyhead::cli {

std::string cuda_device_name() {
  return "";
}

BenchResult time_case_cuda(const CaseSpec& spec, const BenchSettings& settings) {
  BenchResult r;
  r.spec = spec;
  r.backend = settings.backend;
  r.outcome = Outcome::unsupported;
  r.reason = "this polyhead was built without CUDA (POLYHEAD_CUDA=OFF)";
  return r;
}

}  // namespace polyhead::cli
