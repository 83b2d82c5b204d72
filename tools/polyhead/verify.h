// Correctness against the fp64 reference, shared by `polyhead check` and `polyhead bench
// --verify` (DESIGN.md section 6): inputs rounded to the case dtype, outputs poisoned with NaN,
// relative L2 error of o and lse under the dtype's tolerance.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cases.h"
#include "host_tensor.h"
#include "polyhead/attention.h"

namespace polyhead::cli {

// fp32 1e-5, fp16 2e-3, bf16 1.6e-2.
double tolerance(DType t);

// ||out - ref|| / ||ref|| over the finite entries. Infinite entries (lse = -inf of a fully
// masked row) must match exactly; any NaN gives NaN, which fails every comparison.
double rel_l2(const HostTensor& out, const HostTensor& ref);

HostTensor poisoned(DType dtype, const std::vector<int64_t>& shape);

// Runs a problem over host tensors on `backend`: directly, or, for a backend that needs device
// memory (cuda), on copies of the inputs on GPU 0 whose outputs are copied back (device.h).
// Returns the backend's refusal, if any (then nothing ran).
Status run_anywhere(const AttentionProblem& host, const RunOptions& options);

struct VerifyResult {
  bool passed = false;
  double o_err = 0.0, lse_err = 0.0, tol = 0.0;
  std::string instance;  // what was checked: the case itself or a scaled-down instance of it
  std::string note;      // why the check could not run, or the error it raised
};

// Work of the fp64 reference (multiply-adds, dense bound) above which --verify checks a
// scaled-down instance of the case instead of the case itself.
inline constexpr int64_t kVerifyBudget = int64_t(1) << 30;

// The instance `bench --verify` checks for `spec`: the case itself when the reference can run it
// within kVerifyBudget, else the same pattern, head dim, dtype and GQA ratio drawn at the
// largest smaller sequence length (and fewer heads, batch 1) that fits. Sets `what` to a phrase
// for the report.
CaseSpec verify_instance(const CaseSpec& spec, std::string* what);

VerifyResult verify_case(const CaseSpec& spec, const std::string& backend, int threads);

}  // namespace polyhead::cli
