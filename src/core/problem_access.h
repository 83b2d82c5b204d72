// Helpers shared by backends: the sequences of a (possibly packed) batch and element access.
#pragma once

#include <cstdint>
#include <vector>

#include "polyhead/block_map.h"
#include "polyhead/dtype.h"
#include "polyhead/problem.h"

namespace polyhead::detail {

// One sequence of the batch: its index in dimension 0 and its token range in dimension 1.
struct Sequence {
  int64_t batch = 0;    // index into dimension 0 of q, k, v, o, lse (0 when packed)
  int64_t q_start = 0;  // first token in dimension 1 of q, o and dimension 2 of lse
  int64_t seqlen_q = 0;
  int64_t k_start = 0;  // first token in dimension 1 of k, v
  int64_t seqlen_k = 0;
};

// Reads cu_seqlens on the host (they must be host tensors here).
std::vector<Sequence> sequences(const AttentionProblem& p, const ProblemShape& s);

// The sequence's q [Sq, Hq, Dqk] and k [Sk, Hkv, Dqk] for data-dependent masks.
MaskInputs mask_inputs(const AttentionProblem& p, const Sequence& seq);

// The mask of one sequence compiled for `tile` (selecting from q and k when the mask is dynamic).
BlockMap compile_mask(const AttentionProblem& p, const ProblemShape& s, const Sequence& seq,
                      TileShape tile);

// Element access for any float dtype; `off` is in elements.
inline double load_f64(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::f32:
      return static_cast<const float*>(base)[off];
    case DType::f64:
      return static_cast<const double*>(base)[off];
    case DType::f16:
      return half_to_float(static_cast<const uint16_t*>(base)[off]);
    case DType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(base)[off]);
    default:
      return 0.0;
  }
}

inline float load_f32(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::f32:
      return static_cast<const float*>(base)[off];
    case DType::f64:
      return float(static_cast<const double*>(base)[off]);
    case DType::f16:
      return half_to_float(static_cast<const uint16_t*>(base)[off]);
    case DType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(base)[off]);
    default:
      return 0.0f;
  }
}

inline void store_f64(void* base, DType t, int64_t off, double v) {
  switch (t) {
    case DType::f32:
      static_cast<float*>(base)[off] = float(v);
      break;
    case DType::f64:
      static_cast<double*>(base)[off] = v;
      break;
    case DType::f16:
      static_cast<uint16_t*>(base)[off] = float_to_half(float(v));
      break;
    case DType::bf16:
      static_cast<uint16_t*>(base)[off] = float_to_bf16(float(v));
      break;
    default:
      break;
  }
}

}  // namespace polyhead::detail
