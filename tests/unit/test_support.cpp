// The test harness itself: host tensor layouts and canaries, case generation, and the
// comparison rules, so that a green differential test means what it says.
#include <cmath>
#include <limits>
#include <string>

#include "support/testing.h"

namespace polyhead::testing {
namespace {

TEST(Support, LayoutsGiveTheStridesTheySay) {
  const HostTensor plain(DType::f32, {2, 3, 4, 5});
  EXPECT_EQ(plain.strides(), (std::vector<int64_t>{60, 20, 5, 1}));
  const HostTensor swapped(DType::f32, {2, 3, 4, 5}, Layout{true, 0, 1});
  EXPECT_EQ(swapped.strides(), (std::vector<int64_t>{60, 5, 15, 1}));
  const HostTensor padded(DType::f16, {2, 3, 4}, Layout{false, 2, 2});
  EXPECT_EQ(padded.strides(), (std::vector<int64_t>{32, 10, 2}));
  const HostTensor sliced = plain.slice(2, 1, 2);
  EXPECT_EQ(sliced.base_offset(), 5);
  EXPECT_EQ(sliced.shape(), (std::vector<int64_t>{2, 3, 2, 5}));
  EXPECT_EQ(sliced.view().data, static_cast<void*>(plain.storage() + 5 * sizeof(float)));
}

TEST(Support, ValuesRoundToTheDtypeAndSurviveTheLayout) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i32}) {
    HostTensor x(t, {3, 4, 5}, Layout{true, 1, 2});
    for (int64_t f = 0; f < x.numel(); ++f) x.set(f, 0.1 * double(f) - 2.0);
    const HostTensor y = x.to_f64();
    for (int64_t f = 0; f < x.numel(); ++f) {
      const double v = 0.1 * double(f) - 2.0;
      const double want = t == DType::i32   ? double(int32_t(v))
                          : t == DType::f64 ? v
                                            : double(round_to(t, float(v)));
      ASSERT_EQ(x.get(f), want) << dtype_name(t) << x.index_string(f);
      ASSERT_EQ(y.get(f), want);
      ASSERT_EQ(copy_to_f64(x.view()).get(f), want);
    }
    EXPECT_EQ(x.padding_changed(), 0) << "set() stays inside the view";
  }
}

TEST(Support, CanaryCatchesWritesOutsideTheView) {
  HostTensor t(DType::bf16, {2, 3}, Layout{false, 1, 1});
  EXPECT_EQ(t.padding_changed(), 0);
  EXPECT_TRUE(std::isnan(t.get(0))) << "unwritten elements hold a NaN";
  t.storage()[t.storage_bytes() - 1] = std::byte{0};  // the trailing padding
  EXPECT_EQ(t.padding_changed(), 1);
  t.fill_canary();
  EXPECT_EQ(t.padding_changed(), 0);
}

HostTensor vector_of(std::initializer_list<double> values) {
  HostTensor t(DType::f64, {int64_t(values.size())});
  int64_t f = 0;
  for (double v : values) t.set(f++, v);
  return t;
}

TEST(Support, ComparisonRules) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const HostTensor want = vector_of({1.0, -inf, nan, 2.0});
  EXPECT_TRUE(compare_tensor(vector_of({1.0, -inf, nan, 2.0}), want, 0.0, "x").ok);
  EXPECT_FALSE(compare_tensor(vector_of({1.0, -inf, 0.0, 2.0}), want, 1.0, "x").ok);
  EXPECT_FALSE(compare_tensor(vector_of({1.0, inf, nan, 2.0}), want, 1.0, "x").ok);
  EXPECT_FALSE(compare_tensor(vector_of({1.0, -1e30, nan, 2.0}), want, 1.0, "x").ok);
  EXPECT_FALSE(compare_tensor(vector_of({nan, -inf, nan, 2.0}), want, 1.0, "x").ok);
  const TensorVerdict close = compare_tensor(vector_of({1.0, -inf, nan, 2.001}), want, 1e-3, "x");
  EXPECT_TRUE(close.ok) << close.detail;
  EXPECT_NEAR(close.error, 0.001 / std::sqrt(5.0), 1e-12);
  EXPECT_FALSE(compare_tensor(vector_of({1.0, -inf, nan, 2.01}), want, 1e-3, "x").ok);
  // A zero reference: the error is absolute.
  EXPECT_FALSE(compare_tensor(vector_of({1e-3, 0.0}), vector_of({0.0, 0.0}), 1e-4, "x").ok);
  EXPECT_TRUE(compare_tensor(vector_of({0.0, -0.0}), vector_of({0.0, 0.0}), 0.0, "x").ok);
}

TEST(Support, FullyMaskedRowsMustBeExactlyZero) {
  Case c;
  c.seqlen_q = 4;
  c.seqlen_k = 2;
  c.dim_qk = c.dim_v = 3;
  c.mask = "causal";  // rows 0 and 1 see nothing
  Problem p = make_problem(c);
  ASSERT_TRUE(run_on_backend(p, "reference").ran);
  const Expected e = reference_outputs(p.view());
  EXPECT_TRUE(compare_outputs(p, e.o, e.lse, {1e-5, 1e-5}).ok);
  p.o.set_at({0, 1, 0, 2}, 1e-30);  // tiny, far inside any relative tolerance
  const Verdict v = compare_outputs(p, e.o, e.lse, {1e-5, 1e-5});
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.detail.find("fully masked"), std::string::npos) << v.detail;
}

TEST(Support, RunOnBackendPoisonsAndWritesEverything) {
  Case c;
  c.seqlen_q = 9;
  c.seqlen_k = 5;
  c.o_layout = Layout{true, 2, 1};
  Problem p = make_problem(c);
  p.o.set(0, 123.0);
  ASSERT_TRUE(run_on_backend(p, "reference").ran);
  for (int64_t f = 0; f < p.o.numel(); ++f) ASSERT_FALSE(std::isnan(p.o.get(f)));
  EXPECT_EQ(p.o.padding_changed(), 0);
  // Unavailable backends skip with a reason instead of running.
  EXPECT_FALSE(backend_unavailable("no-such-backend").empty());
  EXPECT_TRUE(backend_unavailable("reference").empty());
  const RunResult gpu = run_on_backend(p, "cuda");
  EXPECT_TRUE(gpu.ran || !gpu.skip_reason.empty());
}

TEST(Support, CasesAreReproducibleAndDescribed) {
  RandomSpace space;
  for (uint64_t i = 0; i < 200; ++i) {
    const Case a = random_case("support", i, space), b = random_case("support", i, space);
    ASSERT_EQ(a.describe(), b.describe());
    ASSERT_EQ(a.heads_q % a.heads_kv, 0) << a.describe();
    ASSERT_LE(a.work(), space.max_work) << a.describe();
    ASSERT_GE(a.total_q(), 1);
    ASSERT_GE(a.total_k(), 1);
  }
  EXPECT_NE(random_case("support", 1, space).describe(),
            random_case("support", 2, space).describe());
  EXPECT_NE(case_seed("a", 0), case_seed("b", 0));

  Case c;
  c.suite = "describe";
  c.index = 7;
  c.batch = 3;
  c.seqlen_q = 37;
  c.seqlen_k = 113;
  c.heads_q = 8;
  c.heads_kv = 2;
  c.dim_qk = 192;
  c.dim_v = 128;
  c.dtype = DType::bf16;
  c.o_dtype = DType::f32;
  c.mask = "window:5,9,topleft";
  c.scale = 0.25f;
  c.softcap = 30.0f;
  c.alibi = c.sinks = true;
  c.lse = false;
  c.qkv_layout.swap_12 = true;
  c.input_scale = 2.5f;
  c.num_threads = 3;
  c.pokes = {{'v', {1, 2, 0, 4}, std::nan("")}};
  const std::string d = c.describe();
  for (const char* part : {"describe#7",      "seed 0x",       "B=3",
                           "Sq=37",           "Sk=113",        "Hq=8",
                           "Hkv=2",           "Dqk=192",       "Dv=128",
                           "dtype=bf16",      "o=f32",         "mask=window:5,9,topleft",
                           "scale=0.25",      "softcap=30",    "alibi=yes",
                           "sinks=yes",       "lse=no",        "qkv: dims 1,2 swapped",
                           "input_scale=2.5", "num_threads=3", "v[1,2,0,4]=nan"}) {
    EXPECT_NE(d.find(part), std::string::npos) << "\"" << d << "\" lacks " << part;
  }
  c.seqlens_q = {3, 0};
  c.seqlens_k = {0, 4};
  EXPECT_NE(c.describe().find("seqlens_q=[3,0] seqlens_k=[0,4]"), std::string::npos);
}

TEST(Support, GeneratedInputsAreRepresentableAndSeeded) {
  Case c;
  c.seqlen_q = 7;
  c.seqlen_k = 9;
  for (DType t : {DType::f16, DType::bf16}) {
    c.dtype = t;
    const Problem a = make_problem(c), b = make_problem(c);
    for (int64_t f = 0; f < a.q.numel(); ++f) {
      ASSERT_EQ(a.q.get(f), double(round_to(t, float(a.q.get(f)))));
      ASSERT_EQ(a.q.get(f), b.q.get(f)) << "same case, same data";
    }
  }
  c.index = 1;
  EXPECT_NE(make_problem(c).q.get(0), make_problem(Case{}).q.get(0));
}

}  // namespace
}  // namespace polyhead::testing
