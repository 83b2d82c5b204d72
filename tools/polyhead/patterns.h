// The mask patterns of the benchmark grid (bench/grids/README.md): the 14 of the Long-Context
// Attention Benchmark (kernels.md section 17) and those of the seed papers (neighborhood
// attention, S2, MoA, LongHeads, DHSA, top-k), each built from the library's mask kinds.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cases.h"
#include "json.h"

namespace polyhead::cli {

// A document-length histogram: bins of [min, max] tokens (inclusive) with weights. Documents
// are drawn as LongCA-bench draws them: a bin by weight, a length uniform in the bin, cut to
// what is left, until the lengths fill the sequence.
struct DocLengths {
  struct Bin {
    int64_t min = 1, max = 1;
    double weight = 1.0;
  };
  std::vector<Bin> bins;
};

inline constexpr std::string_view kPatterns[] = {
    // LongCA-bench
    "full", "causal", "causal_document", "full_document", "share_question", "causal_blockwise",
    "prefix_lm_document", "prefix_lm_causal", "qk_sparse", "hash_sparse", "sliding_window",
    "sliding_window_causal", "global_sliding_window", "block_causal_document",
    // seed papers
    "na1d", "na2d", "na3d", "s2", "moa", "longheads", "dhsa", "topk"};

// Sets the mask of `c` (whose op, sizes and heads are set; Sq = Sk except for decode) for
// `pattern` with the grid's `params` (an object or null), drawing what the pattern draws from
// `seed`. Fills c.pattern, c.mask (or the tensor-mask fields, the varlen lengths) and c.info,
// and adds the parameter names the pattern reads to `used` (a group's parameters must each be
// read by one of its patterns). Throws UsageError naming the pattern when it does not fit the
// case (e.g. a 2-D neighborhood on a sequence length that is not a square).
void apply_pattern(std::string_view pattern, const Json& params, const DocLengths& docs,
                   uint64_t seed, CaseSpec& c, std::set<std::string, std::less<>>* used = nullptr);

// Slices covering rows and keys [a, b) with the band i - left <= j <= i + right, clipped to
// [a, b): at most four slices (full, causal, inv-causal, bi-causal pieces).
std::vector<AttnSlice> band_slices(int64_t a, int64_t b, int64_t left, int64_t right);

}  // namespace polyhead::cli
