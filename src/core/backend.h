// The backend interface and registry (DESIGN.md section 4). Internal: users go through
// polyhead::attention / supports / backends.
#pragma once

#include <span>
#include <string_view>

#include "polyhead/attention.h"
#include "polyhead/problem.h"

namespace polyhead::detail {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual BackendInfo info() const = 0;
  // `p` has passed validate(), which produced `s`.
  virtual Status supports(const AttentionProblem& p, const ProblemShape& s) const = 0;
  virtual void forward(const AttentionProblem& p, const ProblemShape& s,
                       const RunOptions& options) const = 0;
};

// Every backend compiled in, in the order "auto" tries them (fastest first).
std::span<const Backend* const> all_backends();
// nullptr if no backend has that name.
const Backend* find_backend(std::string_view name);

const Backend& reference_backend();
const Backend* cpu_backend();   // nullptr when built without Highway
const Backend* cuda_backend();  // nullptr when built without CUDA

}  // namespace polyhead::detail
