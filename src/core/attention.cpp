// Public entry points: validation, backend choice, FLOP counting.
#include "polyhead/attention.h"

#include <string>

#include "core/backend.h"
#include "core/mask_rule.h"
#include "core/problem_access.h"
#include "polyhead/block_map.h"
#include "polyhead/error.h"

namespace polyhead {
namespace {

std::string backend_names() {
  std::string names = "auto";
  for (const detail::Backend* b : detail::all_backends()) names += ", " + std::string(b->name());
  return names;
}

const detail::Backend& pick(const AttentionProblem& p, const ProblemShape& s,
                            std::string_view name) {
  if (name == "auto") {
    std::string reasons;
    for (const detail::Backend* b : detail::all_backends()) {
      const Status st = b->supports(p, s);
      if (st.ok) return *b;
      reasons += "; " + std::string(b->name()) + ": " + st.reason;
    }
    POLYHEAD_FAIL("no backend supports this problem", reasons);
  }
  const detail::Backend* b = detail::find_backend(name);
  POLYHEAD_CHECK(b != nullptr, "backend '", name, "' is not available in this build (",
                 backend_names(), ")");
  const Status st = b->supports(p, s);
  POLYHEAD_CHECK(st.ok, "backend '", name, "' does not support this problem: ", st.reason);
  return *b;
}

}  // namespace

void attention(const AttentionProblem& problem, const RunOptions& options) {
  const ProblemShape s = validate(problem);
  pick(problem, s, options.backend).forward(problem, s, options);
}

Status supports(const AttentionProblem& problem, std::string_view backend) {
  const ProblemShape s = validate(problem);
  if (backend == "auto") {
    pick(problem, s, backend);
    return Status::yes();
  }
  const detail::Backend* b = detail::find_backend(backend);
  if (b == nullptr) {
    return Status::no("backend '" + std::string(backend) + "' is not available in this build (" +
                      backend_names() + ")");
  }
  return b->supports(problem, s);
}

std::string choose_backend(const AttentionProblem& problem) {
  const ProblemShape s = validate(problem);
  return std::string(pick(problem, s, "auto").name());
}

std::vector<BackendInfo> backends() {
  std::vector<BackendInfo> out;
  for (const detail::Backend* b : detail::all_backends()) out.push_back(b->info());
  return out;
}

int64_t unmasked_pairs(const AttentionProblem& problem) {
  const ProblemShape s = validate(problem);
  POLYHEAD_CHECK(!s.varlen || problem.cu_seqlens_q->device.type == DeviceType::cpu,
                 "unmasked_pairs: cu_seqlens must be host tensors to count pairs");
  int64_t pairs = 0;
  for (const detail::Sequence& seq : detail::sequences(problem, s)) {
    // The rule alone: counting pairs needs no tiles (nor the rows a stored block map computes).
    const MaskInputs in = detail::mask_inputs(problem, seq);
    pairs += detail::make_rule(problem.mask, {seq.seqlen_q, seq.seqlen_k, s.heads_q, s.heads_kv},
                               problem.mask.is_dynamic() ? &in : nullptr)
                 ->pair_count();
  }
  return pairs;
}

double forward_flops(const AttentionProblem& problem) {
  const ProblemShape s = validate(problem);
  return 2.0 * double(s.head_dim_qk + s.head_dim_v) * double(unmasked_pairs(problem));
}

std::string version() {
  return POLYHEAD_VERSION;
}

}  // namespace polyhead
