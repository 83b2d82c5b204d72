// The attention problem of DESIGN.md section 2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "polyhead/mask.h"
#include "polyhead/tensor.h"

namespace polyhead {

// Semantics, per query head h reading kv head h / (Hq / Hkv):
//   s[i,j] = scale * <q_i, k_j>
//   s[i,j] = softcap * tanh(s[i,j] / softcap)            if softcap > 0
//   s[i,j] -= slope_h * |pos(i) - j|                     if alibi_slopes are given
//   s[i,j] = -inf                                        where the mask forbids (i, j)
//   lse[i] = log(sum_j exp(s[i,j]) + exp(sink_h))        sink term only if sinks are given
//   o[i]   = sum_j exp(s[i,j] - lse[i]) * v_j
// pos(i) = i + Sk - Sq (bottom-right) or i (a top-left mask). A fully masked row gives
// o = 0 and lse = -inf (lse = sink_h with a sink).
struct AttentionProblem {
  TensorView q;  // [B, Sq, Hq, Dqk]   f32 | f16 | bf16 (f64 on the reference backend)
  TensorView k;  // [B, Sk, Hkv, Dqk]  same dtype as q; Hq % Hkv == 0
  TensorView v;  // [B, Sk, Hkv, Dv]   same dtype as q
  TensorView o;  // [B, Sq, Hq, Dv]    output: f32 | f16 | bf16 (f64 on the reference backend)
  std::optional<TensorView> lse;  // [B, Hq, Sq] output, f32 (f64 on the reference backend)

  // Packed variable-length batch: int32 [nseq + 1] offsets into the token dimension of q (and
  // of k, v), starting at 0 and non-decreasing; q, k, v, o then have B = 1 and lse is
  // [1, Hq, total_q]. Both are given or neither.
  std::optional<TensorView> cu_seqlens_q;
  std::optional<TensorView> cu_seqlens_k;

  std::optional<float> scale;              // default Dqk^-0.5
  float softcap = 0.0f;                    // > 0 enables logit soft-capping
  std::optional<TensorView> alibi_slopes;  // f32 [Hq]
  std::optional<TensorView> sinks;         // f32 [Hq], learned sink logits
  MaskSpec mask;
};

// Resolved sizes of a validated problem.
struct ProblemShape {
  int64_t batch = 0;     // number of sequences (nseq for varlen)
  int64_t seqlen_q = 0;  // per sequence; the maximum for varlen
  int64_t seqlen_k = 0;
  int64_t heads_q = 0;
  int64_t heads_kv = 0;
  int64_t head_dim_qk = 0;
  int64_t head_dim_v = 0;
  bool varlen = false;
  float scale = 0.0f;  // resolved softmax scale
};

// Validates every argument (shapes, dtypes, strides, pointers, devices, options, cu_seqlens)
// and returns the resolved sizes; throws Error naming the first bad argument.
ProblemShape validate(const AttentionProblem& problem);

}  // namespace polyhead
