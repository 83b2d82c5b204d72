// Independent, deliberately plain implementations of the mask rules of kernels.md (written
// from the spec text, not from the library), and brute-force checks of compiled BlockMaps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "polyhead/polyhead.h"

namespace polyhead::masktest {

// NATTEN/GNA rule in one dimension (kernels.md section 8).
bool na_1d(int64_t x, int64_t y, int64_t len, int64_t kernel, int64_t dilation, int64_t stride,
           bool causal);
// The rule over a row-major grid of `rank` dimensions.
bool na_allowed(const NeighborhoodMask& m, int64_t i, int64_t j);

// S2-Attention token mask for query head h (kernels.md section 7), Sq == Sk.
bool s2_allowed(const StridedMask& m, int64_t heads_q, int64_t heads_kv, int64_t h, int64_t i,
                int64_t j);

// Dense [Hq][Sq][Sk] mask of a BlockMap's element rule.
std::vector<uint8_t> dense_mask(const BlockMap& map);

// Checks rows (visited/full), allowed_row, pair_count, visited/full tile totals of `map`
// against brute force over `allowed`; returns "" or a description of the first mismatch.
std::string check_block_map(const BlockMap& map);

// Random-but-seeded q, k, v of a problem, f32, [1, S, H, D].
struct Tensors {
  std::vector<float> q, k, v;
};
Tensors random_qkv(int64_t sq, int64_t sk, int64_t hq, int64_t hkv, int64_t d, uint32_t seed);

// Runs `mask` on `backend` and on the reference (f64), returning relative L2 error of o and
// the max abs error of finite lse; -1 when an output element was left unwritten.
struct Diff {
  double o_rel = 0, lse_abs = 0;
  bool lse_inf_match = true;
};
Diff run_vs_reference(const MaskSpec& mask, int64_t sq, int64_t sk, int64_t hq, int64_t hkv,
                      int64_t d, const std::string& backend, uint32_t seed,
                      const MaskSpec* reference_mask = nullptr);

// The dense mask as a BlockMask with 1x1 blocks (the spec "materialized densely").
MaskSpec materialize(const BlockMap& map);

}  // namespace polyhead::masktest
