// Case definitions shared by `polyhead check` (random problems against the reference) and
// `polyhead bench` (the timing grid), and the inputs they materialize (STYLE.md point 11).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host_tensor.h"
#include "polyhead/problem.h"

namespace polyhead::cli {

struct CaseSpec {
  std::string name;
  int64_t batch = 1;  // sequences (packed into one row of the tensors when varlen)
  int64_t seqlen_q = 1;
  int64_t seqlen_k = 1;
  int64_t heads_q = 1;
  int64_t heads_kv = 1;
  int64_t head_dim_qk = 64;
  int64_t head_dim_v = 64;
  // MaskSpec text form; for the kinds that hold a tensor (tensor_mask) the text names no file
  // and CaseData supplies random data.
  std::string mask = "none";
  enum class TensorMask : uint8_t { none, blocks, topk };
  TensorMask tensor_mask = TensorMask::none;
  int64_t tensor_mask_params[2] = {};  // blocks: (bq, bk); topk: (k, window)
  DType dtype = DType::f32;
  std::optional<float> scale;
  float softcap = 0.0f;
  bool alibi = false;
  bool sinks = false;
  // Varlen when non-empty: per-sequence lengths (0 allowed), packed with cu_seqlens.
  std::vector<int64_t> seqlens_q, seqlens_k;
  // q, k, v stored [B, H, S, D] and passed as strided [B, S, H, D] views.
  bool heads_major = false;

  // Benchmark-only fields: what to measure and the targets the report checks.
  bool memory = false;   // run once in a child process and report its peak resident memory
  std::string baseline;  // a case whose time this one's is compared with (causal vs dense)
  std::optional<double> expected_time_ratio;  // time / baseline time, e.g. 0.5 for causal
  std::optional<double> min_ceiling_ratio;    // GFLOP/s / sgemm GFLOP/s at least this
  std::optional<double> max_peak_ratio;       // peak resident memory / bytes of q, k, v, o

  bool varlen() const { return !seqlens_q.empty(); }
  int64_t tensor_batch() const { return varlen() ? 1 : batch; }
  int64_t total_q() const;  // rows in dimension 1 of q and o
  int64_t total_k() const;
  std::vector<int64_t> o_shape() const;    // [B, Sq, Hq, Dv]
  std::vector<int64_t> lse_shape() const;  // [B, Hq, Sq]
  // One line naming every parameter: "B2 Sq37 Sk113 H8/2 D64/32 causal f16 softcap=2 alibi".
  std::string describe() const;
  std::string shape_text() const;  // "B2 Sq37 Sk113 H8/2 D64/32" (+ varlen lengths)
};

// The random problems of `polyhead check`: case i is drawn from (seed, i) alone; case i has mask
// form i % kMaskForms and dtype (i / kMaskForms) % 3, so the first 3 * kMaskForms cases cover
// every mask form (every kind of the grammar) x dtype.
inline constexpr int kMaskForms = 15;
std::vector<CaseSpec> check_cases(uint64_t seed, int count);

// The benchmark grid: "quick" (seconds), "default" (the demo, well under a minute on 2 cores),
// "full" (adds long sequences and the peak-memory case: minutes).
std::vector<CaseSpec> bench_cases(std::string_view preset);
inline constexpr std::string_view kBenchPresets[] = {"quick", "default", "full"};

// The inputs of one case: q, k, v rounded to the case dtype (and exact f64 copies of the rounded
// values when `with_f64`, for the fp64 reference), ALiBi slopes, sinks and cu_seqlens.
class CaseData {
 public:
  CaseData(const CaseSpec& spec, uint64_t seed, bool with_f64);

  // The problem over these inputs writing `o` and `lse`; `f64` selects the f64 copies.
  AttentionProblem problem(const TensorView& o, const std::optional<TensorView>& lse,
                           bool f64) const;
  int64_t input_bytes() const { return q_.bytes() + k_.bytes() + v_.bytes(); }

 private:
  TensorView layout(const HostTensor& t) const;

  CaseSpec spec_;
  HostTensor q_, k_, v_, q64_, k64_, v64_;
  HostTensor alibi_, sinks_, cu_q_, cu_k_;
  HostTensor mask_tensor_;  // u8 block bits [Hq, ceil(Sq/bq), ceil(Sk/bk)] or f32 top-k scores
};

}  // namespace polyhead::cli
