// Differential tests over shapes: random cases, sizes that tiles do not divide, Sq != Sk both
// ways, GQA ratios, head dims 1..256, Dqk != Dv, and every input / output dtype pair.
#include <vector>

#include "unit/differential.h"

namespace polyhead::testing {

Case small_case(std::string_view suite, uint64_t index) {
  Case c;
  c.suite = std::string(suite);
  c.index = index;
  c.batch = 2;
  c.seqlen_q = 37;
  c.seqlen_k = 113;
  c.heads_q = 4;
  c.heads_kv = 2;
  c.dim_qk = c.dim_v = 64;  // the head dim every GPU kernel family supports
  return c;
}

namespace {

TEST_P(Differential, RandomCases) {
  const int n = kExtended ? 2000 : 250;
  RandomSpace space;
  if (kExtended) space.max_work = 2e8;
  std::vector<Case> cases;
  for (int i = 0; i < n; ++i) cases.push_back(random_case("random", uint64_t(i), space));
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, AwkwardSequenceLengths) {
  const std::vector<int64_t> sizes = {1, 7, 37, 113, 239, 1023};
  std::vector<Case> cases;
  for (int64_t sq : sizes) {
    for (int64_t sk : sizes) {
      for (const char* mask : {"none", "causal"}) {
        Case c = small_case("seqlens", cases.size());
        c.batch = 1;
        c.seqlen_q = sq;
        c.seqlen_k = sk;
        c.heads_q = 2;
        c.heads_kv = 1;
        c.dim_qk = c.dim_v = 64;
        c.mask = mask;
        c.dtype = kDtypes[cases.size() % 3];
        cases.push_back(c);
      }
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, GqaRatios) {
  // (Hq, Hkv): MHA, GQA 2, 7 (an odd ratio), 32 (MQA at Hq = 32), GQA 32 with two kv heads.
  const std::vector<std::pair<int64_t, int64_t>> heads = {{4, 4}, {8, 4},  {14, 2},
                                                          {7, 1}, {32, 1}, {64, 2}};
  std::vector<Case> cases;
  for (auto [hq, hkv] : heads) {
    for (const char* mask : {"none", "causal", "window:20,3"}) {
      Case c = small_case("gqa", cases.size());
      c.batch = 1;
      c.seqlen_q = 113;
      c.seqlen_k = 239;
      c.heads_q = hq;
      c.heads_kv = hkv;
      c.mask = mask;
      c.dtype = kDtypes[cases.size() % 3];
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, HeadDims) {
  std::vector<int64_t> dims;
  if (kExtended) {
    for (int64_t d = 1; d <= 256; ++d) dims.push_back(d);
  } else {
    dims = {1,   2,   3,   4,   5,   6,   7,   8,   9,   11,  13,  15,  16,  17,
            24,  31,  32,  33,  40,  48,  63,  64,  65,  72,  80,  96,  100, 111,
            127, 128, 129, 144, 160, 176, 191, 192, 193, 200, 224, 240, 255, 256};
  }
  std::vector<Case> cases;
  for (int64_t d : dims) {
    Case c = small_case("head_dims", cases.size());
    c.dim_qk = c.dim_v = d;
    c.dtype = kDtypes[cases.size() % 3];
    c.mask = cases.size() % 2 ? "causal" : "none";
    cases.push_back(c);
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, DqkDiffersFromDv) {
  // MLA prefill 192/128 and absorbed MLA 576/512, odd sizes both ways, extremes.
  const std::vector<std::pair<int64_t, int64_t>> dims = {
      {192, 128}, {576, 512}, {7, 5}, {5, 7}, {128, 64}, {64, 256}, {1, 256}, {256, 1}, {3, 200}};
  std::vector<Case> cases;
  for (auto [dqk, dv] : dims) {
    for (DType t : kDtypes) {
      Case c = small_case("dqk_dv", cases.size());
      c.dim_qk = dqk;
      c.dim_v = dv;
      c.dtype = t;
      c.mask = cases.size() % 2 ? "causal" : "none";
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, EveryInputAndOutputDtype) {
  std::vector<Case> cases;
  for (DType in : kDtypes) {
    for (DType out : kDtypes) {
      for (const char* mask : {"none", "causal"}) {
        Case c = small_case("dtypes", cases.size());
        c.seqlen_q = c.seqlen_k = 239;
        c.dim_qk = c.dim_v = 64;
        c.dtype = in;
        c.o_dtype = out;
        c.mask = mask;
        cases.push_back(c);
      }
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

// Large logits (q and k scaled up): a peaked softmax tests the running max and rescaling.
TEST_P(Differential, PeakedSoftmax) {
  std::vector<Case> cases;
  for (float amplitude : {3.0f, 6.0f, 12.0f}) {
    for (DType t : kDtypes) {
      Case c = small_case("peaked", cases.size());
      c.seqlen_q = 113;
      c.seqlen_k = 239;
      c.dim_qk = c.dim_v = 64;
      c.input_scale = amplitude;
      c.dtype = t;
      c.mask = cases.size() % 2 ? "causal" : "window:30,30";
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

}  // namespace
}  // namespace polyhead::testing
