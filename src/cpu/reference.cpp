// The `reference` backend: the oracle. Plain loops over (sequence, head, query row), every
// score materialized, fp64 accumulation. Never fast, always the semantics of DESIGN.md 2.
#include <cmath>
#include <limits>
#include <vector>

#include "core/backend.h"
#include "core/mask_rule.h"
#include "core/problem_access.h"

namespace polyhead::detail {
namespace {

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }

  BackendInfo info() const override {
    return {"reference", true, "plain loops, fp64 accumulation, scores materialized (the oracle)"};
  }

  Status supports(const AttentionProblem& p, const ProblemShape&) const override {
    if (p.q.device.type != DeviceType::cpu) {
      return Status::no("tensors are on " + to_string(p.q.device) + "; reference runs on the cpu");
    }
    if (p.cu_seqlens_q && p.cu_seqlens_q->device.type != DeviceType::cpu) {
      return Status::no("cu_seqlens must be host tensors for the reference backend");
    }
    return Status::yes();
  }

  void forward(const AttentionProblem& p, const ProblemShape& s, const RunOptions&) const override {
    const double neg_inf = -std::numeric_limits<double>::infinity();
    const int64_t group = s.heads_q / s.heads_kv;
    const bool top_left = p.mask.alignment() == Alignment::top_left;
    for (const Sequence& seq : sequences(p, s)) {
      const MaskInputs in = mask_inputs(p, seq);
      const auto rule = make_rule(p.mask, {seq.seqlen_q, seq.seqlen_k, s.heads_q, s.heads_kv},
                                  p.mask.is_dynamic() ? &in : nullptr);
      const int64_t rows = s.heads_q * seq.seqlen_q;
#pragma omp parallel for schedule(dynamic, 16)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t h = r / seq.seqlen_q, i = r % seq.seqlen_q;
        const int64_t hk = h / group;
        const int64_t pos = top_left ? i : i + seq.seqlen_k - seq.seqlen_q;
        const int64_t q_off =
            seq.batch * p.q.stride[0] + (seq.q_start + i) * p.q.stride[1] + h * p.q.stride[2];
        std::vector<double> q(size_t(s.head_dim_qk)), score(size_t(seq.seqlen_k), neg_inf);
        for (int64_t d = 0; d < s.head_dim_qk; ++d) {
          q[size_t(d)] = load_f64(p.q.data, p.q.dtype, q_off + d * p.q.stride[3]);
        }
        const double slope =
            p.alibi_slopes
                ? static_cast<const float*>(p.alibi_slopes->data)[h * p.alibi_slopes->stride[0]]
                : 0.0;
        // Scores of the visible keys; the running max propagates NaN.
        double m = neg_inf;
        bool any = false, nan = false;
        for (int64_t j = 0; j < seq.seqlen_k; ++j) {
          if (!rule->allowed(h, i, j)) continue;
          const int64_t k_off =
              seq.batch * p.k.stride[0] + (seq.k_start + j) * p.k.stride[1] + hk * p.k.stride[2];
          double dot = 0.0;
          for (int64_t d = 0; d < s.head_dim_qk; ++d) {
            dot += q[size_t(d)] * load_f64(p.k.data, p.k.dtype, k_off + d * p.k.stride[3]);
          }
          double x = double(s.scale) * dot;
          if (p.softcap > 0.0f) x = double(p.softcap) * std::tanh(x / double(p.softcap));
          if (p.alibi_slopes) x -= slope * double(std::abs(pos - j));
          score[size_t(j)] = x;
          any = true;
          if (std::isnan(x)) nan = true;
          if (x > m) m = x;
        }
        double sink = neg_inf;
        if (p.sinks) {
          sink = static_cast<const float*>(p.sinks->data)[h * p.sinks->stride[0]];
          if (sink > m) m = sink;
        }
        if (nan) m = std::numeric_limits<double>::quiet_NaN();

        std::vector<double> out(size_t(s.head_dim_v), 0.0);
        double lse = neg_inf;
        if (any && m == neg_inf) any = false;  // every visible score is -inf: no mass
        if (!any) {
          if (p.sinks) lse = sink;  // only the sink holds mass: o = 0
        } else {
          double sum = p.sinks ? std::exp(sink - m) : 0.0;
          for (int64_t j = 0; j < seq.seqlen_k; ++j) {
            if (rule->allowed(h, i, j)) sum += std::exp(score[size_t(j)] - m);
          }
          lse = m + std::log(sum);
          for (int64_t j = 0; j < seq.seqlen_k; ++j) {
            if (!rule->allowed(h, i, j)) continue;
            const double w = std::exp(score[size_t(j)] - lse);
            const int64_t v_off =
                seq.batch * p.v.stride[0] + (seq.k_start + j) * p.v.stride[1] + hk * p.v.stride[2];
            for (int64_t d = 0; d < s.head_dim_v; ++d) {
              out[size_t(d)] += w * load_f64(p.v.data, p.v.dtype, v_off + d * p.v.stride[3]);
            }
          }
        }
        const int64_t o_off =
            seq.batch * p.o.stride[0] + (seq.q_start + i) * p.o.stride[1] + h * p.o.stride[2];
        for (int64_t d = 0; d < s.head_dim_v; ++d) {
          store_f64(p.o.data, p.o.dtype, o_off + d * p.o.stride[3], out[size_t(d)]);
        }
        if (p.lse) {
          const TensorView& l = *p.lse;
          store_f64(l.data, l.dtype,
                    seq.batch * l.stride[0] + h * l.stride[1] + (seq.q_start + i) * l.stride[2],
                    lse);
        }
      }
    }
  }
};

}  // namespace

const Backend& reference_backend() {
  static const ReferenceBackend backend;
  return backend;
}

}  // namespace polyhead::detail
