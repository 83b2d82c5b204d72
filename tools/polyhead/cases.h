// Case definitions shared by `polyhead check` (random problems against the reference) and
// `polyhead bench` (the timing grid), and the inputs they materialize (STYLE.md point 11).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host_tensor.h"
#include "polyhead/problem.h"

namespace polyhead::cli {

// What a benchmark case measures: the forward pass, the backward pass (2.5x the forward FLOPs;
// no backward kernel exists yet, so polyhead records these as unsupported while the peers run
// them), or a decode step (a few query rows against a long, dense KV cache).
enum class Op : uint8_t { fwd, bwd, decode };
std::string_view op_name(Op op);

// How a benchmark's user block mask is drawn (cases.cpp, CaseData): per kv head (query heads of
// a group share it), from the case seed. random: each block visible with probability `keep`;
// qk_sparse: block-causal (kb <= qb), each block below the diagonal kept with probability
// `keep`, the diagonal always; hash_sparse: block-causal, each block hashed into one of
// `buckets` buckets, visible when the key block's bucket equals the query block's, the diagonal
// always.
struct BlockPattern {
  enum class Kind : uint8_t { random, qk_sparse, hash_sparse };
  Kind kind = Kind::random;
  double keep = 2.0 / 3.0;
  int64_t buckets = 8;
  uint64_t seed = 0;
  bool per_head = false;  // false: one random [1, nq, nk] mask or a per-query-head one at random
};

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
  enum class TensorMask : uint8_t { none, blocks, topk, slices };
  TensorMask tensor_mask = TensorMask::none;
  int64_t tensor_mask_params[2] = {};  // blocks: (bq, bk); topk: (k, window)
  BlockPattern block_pattern;          // blocks: how the bits are drawn
  std::vector<AttnSlice> slices;       // slices: the mask (mask holds a short label)
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
  Op op = Op::fwd;
  std::string pattern;  // the grid's pattern name (bench/grids/README.md), "custom" for raw masks
  // Facts about the drawn pattern that the peers' mask oracle needs (document count, prefix
  // length, global window, ...); exported with the case.
  std::vector<std::pair<std::string, double>> info;
  std::vector<int64_t> documents;  // document boundaries (cu offsets) of document patterns
  // The peer implementations the anchors should try (bench/anchors/grid_peers.py); nullopt: all.
  std::optional<std::vector<std::string>> peers;
  int repeats = 0;  // timed runs (0: the command's --repeats)
  // The same case drawn at another size: (seqlen, Hq, Hkv, batch) -> case, for `bench --verify`
  // on a scaled-down instance; throws UsageError when the pattern does not fit that size.
  std::function<CaseSpec(int64_t, int64_t, int64_t, int64_t)> rescale;
  bool memory = false;   // run once in a child process and report its peak resident memory
  std::string baseline;  // a case whose time this one's is compared with (causal vs dense)
  std::optional<double> expected_time_ratio;  // time / baseline time, e.g. 0.5 for causal
  std::optional<double> min_ceiling_ratio;    // GFLOP/s / sgemm GFLOP/s at least this
  std::optional<double> max_peak_ratio;       // peak resident memory / bytes of q, k, v, o

  bool varlen() const { return !seqlens_q.empty(); }
  int64_t tensor_batch() const { return varlen() ? 1 : batch; }
  int64_t total_q() const;  // rows in dimension 1 of q and o
  int64_t total_k() const;
  // Bytes of q, k, v, o and lse at the case dtype (o and lse as the runs allocate them: f32).
  int64_t tensor_bytes() const;
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

// The inputs of one case: q, k, v rounded to the case dtype (and exact f64 copies of the rounded
// values when `with_f64`, for the fp64 reference), ALiBi slopes, sinks and cu_seqlens.
class CaseData {
 public:
  // values: q, k, v at the case dtype; values_f64: and their f64 copies; none: no q, k, v (the
  // caller brings them, e.g. on a GPU; the mask, cu_seqlens, slopes and sinks are made).
  enum class Fill : uint8_t { values, values_f64, none };
  CaseData(const CaseSpec& spec, uint64_t seed, Fill fill);
  CaseData(const CaseSpec& spec, uint64_t seed, bool with_f64)
      : CaseData(spec, seed, with_f64 ? Fill::values_f64 : Fill::values) {}

  // The problem over these inputs writing `o` and `lse`; `f64` selects the f64 copies.
  AttentionProblem problem(const TensorView& o, const std::optional<TensorView>& lse,
                           bool f64) const;
  // The same problem over other q, k, v views (e.g. device copies of this case's inputs).
  AttentionProblem problem_on(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView& o, const std::optional<TensorView>& lse) const;
  MaskSpec mask() const;
  // q, k, v as stored (for copies): [B, S, H, D], or [B, H, S, D] when heads_major.
  const HostTensor& q() const { return q_; }
  const HostTensor& k() const { return k_; }
  const HostTensor& v() const { return v_; }
  int64_t input_bytes() const { return q_.bytes() + k_.bytes() + v_.bytes(); }
  // The mask tensor (u8 block bits or f32 top-k scores), empty for the other kinds.
  const HostTensor& mask_tensor() const { return mask_tensor_; }
  const HostTensor& cu_seqlens_q() const { return cu_q_; }

 private:
  TensorView layout(const HostTensor& t) const;

  CaseSpec spec_;
  HostTensor q_, k_, v_, q64_, k64_, v64_;
  HostTensor alibi_, sinks_, cu_q_, cu_k_;
  HostTensor mask_tensor_;  // u8 block bits [Hq, ceil(Sq/bq), ceil(Sk/bk)] or f32 top-k scores
};

}  // namespace polyhead::cli
