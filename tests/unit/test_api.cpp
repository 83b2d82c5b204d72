// The public API around the forward pass: the backend list, backend choice, FLOP and pair
// counts against brute force, and TensorView helpers.
#include <set>
#include <string>
#include <vector>

#include "support/testing.h"

namespace polyhead::testing {
namespace {

bool listed(const std::string& name) {
  for (const BackendInfo& b : backends()) {
    if (b.name == name) return true;
  }
  return false;
}

TEST(Api, BackendsListReferenceAndCpu) {
  std::set<std::string> names;
  for (const BackendInfo& b : backends()) {
    EXPECT_TRUE(names.insert(b.name).second) << "backend " << b.name << " listed twice";
    EXPECT_FALSE(b.description.empty()) << b.name;
    if (b.name == "reference" || b.name == "cpu") {
      EXPECT_TRUE(b.available) << b.name << ": " << b.description;
    }
  }
  EXPECT_TRUE(names.count("reference"));
#ifdef POLYHEAD_TESTS_EXPECT_CPU
  EXPECT_TRUE(names.count("cpu")) << "built with Highway, so the cpu backend must be present";
#endif
#ifdef POLYHEAD_HAVE_CUDA
  EXPECT_TRUE(names.count("cuda"));
#else
  EXPECT_FALSE(names.count("cuda"));
#endif
  EXPECT_FALSE(names.count("auto"));
  EXPECT_FALSE(version().empty());
}

Case api_case() {
  Case c;
  c.suite = "api";
  c.batch = 2;
  c.seqlen_q = 37;
  c.seqlen_k = 50;
  c.heads_q = 4;
  c.heads_kv = 2;
  c.dim_qk = 16;
  c.dim_v = 8;
  return c;
}

TEST(Api, ChooseBackend) {
  if (!listed("cpu")) GTEST_SKIP() << "built without the cpu backend";
  for (DType t : {DType::f32, DType::f16, DType::bf16}) {
    Case c = api_case();
    c.dtype = t;
    const Problem p = make_problem(c);
    EXPECT_EQ(choose_backend(p.view()), "cpu") << dtype_name(t) << " on the host";
    EXPECT_TRUE(supports(p.view(), "auto").ok);
  }
  Case c = api_case();
  c.dtype = DType::f64;
  c.o_dtype = DType::f64;
  const Problem p = make_problem(c);
  EXPECT_EQ(choose_backend(p.view()), "reference") << "only the reference runs f64";
}

TEST(Api, AutoRunsTheChosenBackend) {
  Case c = api_case();
  c.mask = "causal";
  c.dtype = DType::bf16;
  const CaseResult r = check_case(c, "auto");
  EXPECT_EQ(r.kind, CaseResult::passed) << r.message;
}

TEST(Api, SupportsAnswersWithReasons) {
  const Problem p = make_problem(api_case());
  EXPECT_TRUE(supports(p.view(), "reference").ok);
  const Status st = supports(p.view(), "no-such-backend");
  EXPECT_FALSE(st.ok);
  EXPECT_FALSE(st.reason.empty());
  EXPECT_FALSE(static_cast<bool>(st));
}

// Pairs and FLOPs against brute force over the mask rule of DESIGN.md section 2.
int64_t brute_pairs(const Case& c) {
  const MaskSpec mask = MaskSpec::parse(c.mask);
  auto count = [&](int64_t sq, int64_t sk) {
    int64_t n = 0;
    for (int64_t i = 0; i < sq; ++i) {
      for (int64_t j = 0; j < sk; ++j) n += mask_allows(mask, sq, sk, i, j) ? 1 : 0;
    }
    return n;
  };
  int64_t pairs = 0;
  if (c.varlen()) {
    for (size_t s = 0; s < c.seqlens_q.size(); ++s) pairs += count(c.seqlens_q[s], c.seqlens_k[s]);
  } else {
    pairs = c.batch * count(c.seqlen_q, c.seqlen_k);
  }
  return pairs * c.heads_q;
}

TEST(Api, PairsAndFlopsMatchBruteForce) {
  const std::vector<const char*> masks = {
      "none",        "causal",      "causal:topleft",     "window:0,0",      "window:5,9",
      "window:-1,3", "window:7,-1", "window:3,3,topleft", "window:100000,0", "window:10,0,sink=3"};
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{37, 50}, {50, 37}, {1, 113},
                                                           {113, 1}, {64, 64}, {130, 70}};
  for (const char* mask : masks) {
    for (auto [sq, sk] : shapes) {
      Case c = api_case();
      c.seqlen_q = sq;
      c.seqlen_k = sk;
      c.mask = mask;
      const Problem p = make_problem(c);
      const int64_t want = brute_pairs(c);
      EXPECT_EQ(unmasked_pairs(p.view()), want) << c.describe();
      EXPECT_EQ(forward_flops(p.view()), 2.0 * double(c.dim_qk + c.dim_v) * double(want))
          << c.describe();
    }
  }
  // Varlen, with empty sequences and sequences without keys or queries.
  for (const char* mask : {"none", "causal", "window:4,1", "causal:topleft"}) {
    Case c = api_case();
    c.seqlens_q = {37, 0, 5, 0, 113};
    c.seqlens_k = {50, 7, 0, 0, 64};
    c.mask = mask;
    const Problem p = make_problem(c);
    const int64_t want = brute_pairs(c);
    EXPECT_EQ(unmasked_pairs(p.view()), want) << c.describe();
    EXPECT_EQ(forward_flops(p.view()), 2.0 * double(c.dim_qk + c.dim_v) * double(want))
        << c.describe();
  }
}

TEST(Api, TensorViewHelpers) {
  float data[2 * 7 * 4 * 3] = {};
  const TensorView t = TensorView::contiguous(data, DType::bf16, {2, 7, 4, 64});
  EXPECT_EQ(t.rank, 4);
  EXPECT_EQ(t.stride[0], 7 * 4 * 64);
  EXPECT_EQ(t.stride[1], 4 * 64);
  EXPECT_EQ(t.stride[2], 64);
  EXPECT_EQ(t.stride[3], 1);
  EXPECT_EQ(t.numel(), 2 * 7 * 4 * 64);
  EXPECT_EQ(t.offset({1, 2, 3, 4}), 1 * 1792 + 2 * 256 + 3 * 64 + 4);
  EXPECT_EQ(t.describe(), "[2, 7, 4, 64] bf16 strides [1792, 256, 64, 1] on cpu");
  const TensorView s = TensorView::strided(data, DType::f32, {3, 5}, {1, 3}, {DeviceType::cuda, 1});
  EXPECT_EQ(s.offset({2, 4}), 14);
  EXPECT_EQ(s.describe(), "[3, 5] f32 strides [1, 3] on cuda:1");
  EXPECT_EQ(to_string(Device{}), "cpu");
  const TensorView huge = TensorView::contiguous(data, DType::f32, {1 << 30, 1 << 30, 1 << 30});
  POLYHEAD_EXPECT_ERROR(huge.numel(), "overflow");
  POLYHEAD_EXPECT_ERROR(TensorView::strided(data, DType::f32, {3, 5}, {1}), "stride");
  POLYHEAD_EXPECT_ERROR(TensorView::contiguous(data, DType::f32, {1, 2, 3, 4, 5}), "rank");
}

}  // namespace
}  // namespace polyhead::testing
