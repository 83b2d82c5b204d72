// Differential tests of the options (scale, softcap, ALiBi, sinks and their combinations),
// strided / transposed / packed layouts, an absent lse, and thread-count independence.
#include <vector>

#include "unit/differential.h"

namespace polyhead::testing {
namespace {

TEST_P(Differential, Scale) {
  std::vector<Case> cases;
  for (float scale : {0.01f, 0.3f, 1.0f, -0.2f}) {
    for (DType t : kDtypes) {
      Case c = small_case("scale", cases.size());
      c.scale = scale;
      c.dtype = t;
      c.mask = cases.size() % 2 ? "causal" : "none";
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, Softcap) {
  std::vector<Case> cases;
  for (float softcap : {0.5f, 2.0f, 30.0f, 50.0f}) {
    for (DType t : kDtypes) {
      Case c = small_case("softcap", cases.size());
      c.softcap = softcap;
      c.input_scale = 3.0f;  // logits of several units, so that the cap bends them
      c.dtype = t;
      c.mask = cases.size() % 2 ? "causal" : "window:10,10";
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, Alibi) {
  std::vector<Case> cases;
  for (const char* mask :
       {"none", "causal", "causal:topleft", "window:20,5", "window:20,5,topleft"}) {
    for (auto [sq, sk] : {std::pair<int64_t, int64_t>{37, 113}, {113, 37}}) {
      Case c = small_case("alibi", cases.size());
      c.seqlen_q = sq;
      c.seqlen_k = sk;
      c.heads_q = 8;
      c.alibi = true;
      c.mask = mask;
      c.dtype = kDtypes[cases.size() % 3];
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, Sinks) {
  std::vector<Case> cases;
  for (const char* mask : {"none", "causal", "window:8,0", "window:0,0,topleft"}) {
    for (DType t : kDtypes) {
      Case c = small_case("sinks", cases.size());
      c.seqlen_q = 113;
      c.sinks = true;
      c.mask = mask;
      c.dtype = t;
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, AllOptionsTogether) {
  std::vector<Case> cases;
  for (const char* mask : {"none", "causal", "window:16,4", "causal:topleft"}) {
    for (DType t : kDtypes) {
      Case c = small_case("all_options", cases.size());
      c.seqlen_q = 113;
      c.seqlen_k = 239;
      c.scale = 0.25f;
      c.softcap = 5.0f;
      c.alibi = c.sinks = true;
      c.mask = mask;
      c.dtype = t;
      c.o_dtype = kDtypes[(cases.size() + 1) % 3];
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, StridedAndTransposedLayouts) {
  const std::vector<Layout> layouts = {
      {true, 0, 1},   // [B, H, S, D] in memory
      {false, 3, 1},  // padded rows
      {false, 0, 2},  // every other element of D
      {true, 5, 1},   // transposed and padded
      {true, 1, 3},   // everything at once
  };
  std::vector<Case> cases;
  for (size_t n = 0; n < layouts.size(); ++n) {
    for (const char* mask : {"none", "causal"}) {
      Case c = small_case("layouts", cases.size());
      c.qkv_layout = layouts[n];
      c.o_layout = layouts[(n + 1) % layouts.size()];
      c.o_layout.inner_stride = 1 + int64_t(n % 2);
      c.lse_layout = layouts[(n + 2) % layouts.size()];
      c.lse_layout.inner_stride = 1 + int64_t(n % 2);
      c.mask = mask;
      c.dtype = kDtypes[cases.size() % 3];
      cases.push_back(c);
    }
  }
  // Packed q, k, v (slices of one [B, S, Hq + 2 Hkv, D] buffer), plain and transposed.
  for (bool swap : {false, true}) {
    Case c = small_case("layouts", cases.size());
    c.seqlen_q = c.seqlen_k = 113;
    c.packed_qkv = true;
    c.qkv_layout.swap_12 = swap;
    c.mask = "causal";
    cases.push_back(c);
  }
  // Varlen with padded, transposed tensors; inner stride 2 also strides cu_seqlens, the ALiBi
  // slopes and the sinks.
  Case c = small_case("layouts", cases.size());
  c.seqlens_q = {37, 0, 64};
  c.seqlens_k = {50, 9, 64};
  c.alibi = c.sinks = true;
  c.qkv_layout = {true, 2, 2};
  c.o_layout = {true, 1, 1};
  c.lse_layout = {true, 3, 1};
  c.mask = "causal";
  cases.push_back(c);
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, LseAbsent) {
  std::vector<Case> cases;
  for (const char* mask : {"none", "causal", "window:3,3"}) {
    for (bool varlen : {false, true}) {
      Case c = small_case("no_lse", cases.size());
      c.lse = false;
      c.mask = mask;
      c.sinks = cases.size() % 2 == 1;
      if (varlen) c.seqlens_q = {37, 0, 11}, c.seqlens_k = {5, 8, 0};
      c.dtype = kDtypes[cases.size() % 3];
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

// The result must not depend on RunOptions::num_threads: bit for bit, NaN and all.
TEST_P(Differential, ThreadCountDoesNotChangeTheResult) {
  for (int n = 0; n < 3; ++n) {
    Case c = small_case("threads", uint64_t(n));
    c.seqlen_q = 239;
    c.seqlen_k = 200;
    c.mask = n == 1 ? "causal" : "window:40,7";
    c.dtype = kDtypes[size_t(n)];
    if (n == 2) c.seqlens_q = {100, 0, 139}, c.seqlens_k = {64, 36, 100};
    SCOPED_TRACE("backend " + backend() + ", " + c.describe());
    Problem p = make_problem(c);
    std::vector<std::byte> o_first, lse_first;
    for (int threads : {1, 2, 3, 8}) {
      const RunResult run = run_on_backend(p, backend(), threads);
      if (!run.ran) GTEST_SKIP() << run.skip_reason;
      if (threads == 1) {
        o_first = p.o.snapshot();
        lse_first = p.lse.snapshot();
        continue;
      }
      EXPECT_TRUE(p.o.snapshot() == o_first) << "o differs with " << threads << " threads";
      EXPECT_TRUE(p.lse.snapshot() == lse_first) << "lse differs with " << threads << " threads";
    }
  }
}

// The same problem run twice gives the same bits (no state kept between calls).
TEST_P(Differential, RepeatedRunsAgree) {
  Case c = small_case("repeat", 0);
  c.mask = "causal";
  c.sinks = true;
  Problem p = make_problem(c);
  if (!run_on_backend(p, backend()).ran) GTEST_SKIP();
  const auto o_first = p.o.snapshot(), lse_first = p.lse.snapshot();
  ASSERT_TRUE(run_on_backend(p, backend()).ran);
  EXPECT_TRUE(p.o.snapshot() == o_first);
  EXPECT_TRUE(p.lse.snapshot() == lse_first);
}

}  // namespace
}  // namespace polyhead::testing
