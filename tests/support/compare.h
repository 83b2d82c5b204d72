// Tolerances (DESIGN.md section 6) and the comparison of a backend's outputs with the fp64
// reference: relative L2 error ||got - want|| / ||want||, non-finite values matched exactly.
#pragma once

#include <string>
#include <string_view>

#include "support/case.h"
#include "support/host_tensor.h"

namespace polyhead::testing {

struct Tolerance {
  double o = 1e-5;
  double lse = 1e-5;
};

// DESIGN.md section 6: f32 1e-5, f16 2e-3, bf16 1.6e-2 (f64 as f32).
double design_tolerance(DType t);
// The tolerance `backend` must meet on case `c`: DESIGN.md's, tightened where the backend has
// been measured to do better.
Tolerance tolerance(std::string_view backend, const Case& c);

struct TensorVerdict {
  bool ok = true;
  double error = 0.0;  // relative L2 over the finite reference elements
  std::string detail;  // why not ok; empty if ok
};

// Relative L2 error of `got` against `want` (same logical shape). A non-finite reference
// element must be matched exactly (NaN by NaN, +-Inf by the same Inf) and is left out of the
// norms; `got` may be non-finite nowhere else. When ||want|| = 0 the error is ||got||.
TensorVerdict compare_tensor(const HostTensor& got, const HostTensor& want, double tol,
                             std::string_view name);

struct Verdict {
  bool ok = true;
  double o_error = 0.0, lse_error = 0.0;
  std::string detail;
};

// The outputs of a run of `p` against the reference's f64 o [B, Sq, Hq, Dv] and lse [B, Hq, Sq]:
// both within tolerance, o exactly zero on every row whose reference lse is -inf (a fully
// masked row), and the padding of o and lse untouched.
Verdict compare_outputs(const Problem& p, const HostTensor& want_o, const HostTensor& want_lse,
                        const Tolerance& tol);

}  // namespace polyhead::testing
