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

namespace {
// [S, H, D] view of one sequence of a [B, S, H, D] tensor.
TensorView sequence_view(const TensorView& t, int64_t batch, int64_t start, int64_t len) {
  TensorView v;
  v.data = static_cast<char*>(t.data) +
           (batch * t.stride[0] + start * t.stride[1]) * dtype_size(t.dtype);
  v.dtype = t.dtype;
  v.rank = 3;
  v.shape = {len, t.shape[2], t.shape[3], 0};
  v.stride = {t.stride[1], t.stride[2], t.stride[3], 0};
  v.device = t.device;
  return v;
}
}  // namespace

MaskInputs mask_inputs(const AttentionProblem& p, const Sequence& seq) {
  return {sequence_view(p.q, seq.batch, seq.q_start, seq.seqlen_q),
          sequence_view(p.k, seq.batch, seq.k_start, seq.seqlen_k), seq.batch, seq.k_start};
}

BlockMap compile_mask(const AttentionProblem& p, const ProblemShape& s, const Sequence& seq,
                      TileShape tile) {
  const MaskGeometry g{seq.seqlen_q, seq.seqlen_k, s.heads_q, s.heads_kv};
  if (!p.mask.is_dynamic()) return BlockMap::compile(p.mask, g, tile);
  const MaskInputs in = mask_inputs(p, seq);
  return BlockMap::compile(p.mask, g, tile, &in);
}

}  // namespace polyhead::detail
