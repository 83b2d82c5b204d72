#include "core/problem_access.h"

namespace polyhead::detail {

std::vector<Sequence> sequences(const AttentionProblem& p, const ProblemShape& s) {
  std::vector<Sequence> out;
  if (!s.varlen) {
    for (int64_t b = 0; b < s.batch; ++b) out.push_back({b, 0, s.seqlen_q, 0, s.seqlen_k});
    return out;
  }
  const auto* cq = static_cast<const int32_t*>(p.cu_seqlens_q->data);
  const auto* ck = static_cast<const int32_t*>(p.cu_seqlens_k->data);
  const int64_t sq = p.cu_seqlens_q->stride[0], sk = p.cu_seqlens_k->stride[0];
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t q0 = cq[b * sq], q1 = cq[(b + 1) * sq];
    const int64_t k0 = ck[b * sk], k1 = ck[(b + 1) * sk];
    out.push_back({0, q0, q1 - q0, k0, k1 - k0});
  }
  return out;
}

}  // namespace polyhead::detail
