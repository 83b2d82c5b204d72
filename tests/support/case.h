// Case: the complete, printable description of one attention problem of the test suites, and
// Problem: its tensors. Data are drawn from the case's seed, so describe() reproduces it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "polyhead/problem.h"
#include "support/host_tensor.h"

namespace polyhead::testing {

// A special value written into an input after generation (NaN / Inf propagation tests).
struct Poke {
  char tensor = 'q';               // 'q', 'k' or 'v'
  std::array<int64_t, 4> index{};  // [b, s, h, d] in the tensor's logical shape
  double value = 0.0;
};

struct Case {
  std::string suite = "manual";  // salts the seed
  uint64_t index = 0;            // number of the case within its suite; seeds its data

  int64_t batch = 1;  // ignored for varlen cases (B = 1 and the sequences are packed)
  int64_t seqlen_q = 1, seqlen_k = 1;
  int64_t heads_q = 1, heads_kv = 1;
  int64_t dim_qk = 64, dim_v = 64;
  DType dtype = DType::f32;      // q, k, v
  std::optional<DType> o_dtype;  // default: dtype
  std::string mask = "none";     // MaskSpec text form
  std::optional<float> scale;    // default Dqk^-0.5
  float softcap = 0.0f;
  bool alibi = false;  // slopes 2^(-8 (h + 1) / Hq), the ALiBi paper's geometric sequence
  bool sinks = false;  // sink logits drawn uniform in [-2, 4)
  bool lse = true;     // pass an lse output

  // Varlen when non-empty: per-sequence lengths, packed into B = 1 with cu_seqlens.
  std::vector<int32_t> seqlens_q, seqlens_k;

  // qkv_layout also sets the element stride of alibi_slopes, sinks and cu_seqlens.
  Layout qkv_layout, o_layout, lse_layout;
  bool packed_qkv = false;  // q, k, v are slices of one [B, S, Hq + 2 Hkv, D] buffer

  float input_scale = 1.0f;  // q and k are drawn N(0, input_scale^2), v N(0, 1)
  std::vector<Poke> pokes;
  int num_threads = 0;  // RunOptions::num_threads

  bool varlen() const { return !seqlens_q.empty(); }
  DType out_dtype() const { return o_dtype.value_or(dtype); }
  int64_t total_q() const;  // tokens in dimension 1 of q (packed total when varlen)
  int64_t total_k() const;
  int64_t tensor_batch() const { return varlen() ? 1 : batch; }
  uint64_t seed() const;
  // Multiply-adds the reference spends on the case (unmasked): a cost bound for sizing.
  double work() const;
  // Every field, on one line: what a failure prints so that the case can be rebuilt.
  std::string describe() const;
};

// The tensors of a case: inputs drawn and rounded to the dtype, outputs filled with the canary.
struct Problem {
  Case spec;
  HostTensor q, k, v;                     // [B, Sq, Hq, Dqk], [B, Sk, Hkv, Dqk], [B, Sk, Hkv, Dv]
  HostTensor o;                           // [B, Sq, Hq, Dv]
  HostTensor lse;                         // [B, Hq, Sq] f32; empty when the case passes no lse
  HostTensor cu_seqlens_q, cu_seqlens_k;  // i32 [nseq + 1]; empty unless varlen
  HostTensor alibi_slopes, sinks;         // f32 [Hq]; empty unless enabled

  // Host views of everything, as a user would pass them.
  AttentionProblem view() const;
};

Problem make_problem(const Case& c);

// The space random cases are drawn from.
struct RandomSpace {
  std::vector<int64_t> seqlens = {1, 7, 37, 113, 239, 1023};
  std::vector<int64_t> head_dims = {1, 7, 16, 32, 64, 96, 128, 192, 256};
  std::vector<DType> dtypes = {DType::f32, DType::f16, DType::bf16};
  std::vector<std::string> masks = {"none",
                                    "causal",
                                    "causal:topleft",
                                    "window:16,0",
                                    "window:5,9",
                                    "window:-1,3",
                                    "window:7,-1",
                                    "window:0,0",
                                    "window:12,4,topleft",
                                    "window:-1,20,topleft"};
  double max_work = 2e7;  // cap on Case::work(): keeps the reference to ~20 ms per case
  bool features = true;   // scale, softcap, ALiBi, sinks, o dtype, lse absent
  bool varlen = true;
  bool layouts = true;
};

// Case `index` of `suite`, drawn from `space` with the case's own seed.
Case random_case(std::string_view suite, uint64_t index, const RandomSpace& space);

}  // namespace polyhead::testing
