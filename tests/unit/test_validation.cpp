// Every error path of validate(): shapes, dtypes, pointers, devices, sizes, overlaps and
// options. Each refusal is an Error naming the argument, and touches no tensor.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "unit/validation_fixture.h"

namespace polyhead::testing {
namespace {

// The view of the argument called `name`.
TensorView& arg(AttentionProblem& p, const std::string& name) {
  if (name == "q") return p.q;
  if (name == "k") return p.k;
  if (name == "v") return p.v;
  if (name == "o") return p.o;
  if (name == "lse") return *p.lse;
  if (name == "cu_seqlens_q") return *p.cu_seqlens_q;
  if (name == "cu_seqlens_k") return *p.cu_seqlens_k;
  if (name == "alibi_slopes") return *p.alibi_slopes;
  if (name == "sinks") return *p.sinks;
  throw std::invalid_argument("no argument " + name);
}

Breakage set_shape(const std::string& name, int d, int64_t value) {
  const std::string field = name + ".shape[" + std::to_string(d) + "] = " + std::to_string(value);
  return {field, [=](AttentionProblem& p) { arg(p, name).shape[size_t(d)] = value; }, name, field};
}

Breakage set_dtype(const std::string& name, DType t) {
  const std::string what = name + " dtype " + std::string(dtype_name(t));
  return {what, [=](AttentionProblem& p) { arg(p, name).dtype = t; }, name, what};
}

const std::vector<std::string> kTensors = {"q", "k", "v", "o", "lse", "alibi_slopes", "sinks"};

TEST_F(Validation, TheValidProblemsPass) {
  EXPECT_NO_THROW(validate(valid_));
  EXPECT_NO_THROW(attention(valid_, {"reference"}));
  use(varlen_case());
  const ProblemShape s = validate(valid_);
  EXPECT_TRUE(s.varlen);
  EXPECT_EQ(s.batch, 2);
  EXPECT_EQ(s.seqlen_q, 5);
  EXPECT_EQ(s.seqlen_k, 6);
  EXPECT_NO_THROW(attention(valid_, {"reference"}));
}

TEST_F(Validation, WrongRank) {
  std::vector<Breakage> b;
  for (const std::string& name : kTensors) {
    b.push_back(
        {name + " rank 2", [=](AttentionProblem& p) { arg(p, name).rank = 2; }, name, "rank 2"});
  }
  expect_refused(b);
}

TEST_F(Validation, ZeroAndNegativeSizes) {
  std::vector<Breakage> b;
  for (const std::string name : {"q", "k", "v", "o", "lse"}) {
    const int rank = arg(valid_, name).rank;
    for (int d = 0; d < rank; ++d) b.push_back(set_shape(name, d, 0));
    b.push_back(set_shape(name, rank - 1, -3));
  }
  b.push_back(set_shape("alibi_slopes", 0, 0));
  b.push_back(set_shape("sinks", 0, 0));
  expect_refused(b);
}

TEST_F(Validation, MismatchedShapes) {
  expect_refused({
      set_shape("k", 0, 1),  // batch
      set_shape("k", 0, 3),
      set_shape("k", 3, 7),  // Dqk
      set_shape("k", 3, 9),
      set_shape("v", 0, 1),
      set_shape("v", 1, 5),  // Sk
      set_shape("v", 1, 7),
      set_shape("v", 2, 1),  // Hkv
      set_shape("o", 0, 1),
      set_shape("o", 1, 4),  // Sq
      set_shape("o", 2, 2),  // Hq
      set_shape("o", 3, 8),  // Dv
      set_shape("o", 3, 5),
      set_shape("lse", 0, 1),
      set_shape("lse", 1, 2),
      set_shape("lse", 2, 6),
      set_shape("alibi_slopes", 0, 3),
      set_shape("sinks", 0, 5),
  });
}

TEST_F(Validation, HeadsThatDoNotDivide) {
  // Hq = 4: Hkv = 3 does not divide it, nor does Hkv = 8 > Hq.
  for (int64_t hkv : {3, 8}) {
    expect_refused({{"Hkv = " + std::to_string(hkv),
                     [=](AttentionProblem& p) { p.k.shape[2] = p.v.shape[2] = hkv; }, "k",
                     "k.shape[2] = " + std::to_string(hkv)}});
  }
}

TEST_F(Validation, UnsupportedAndMixedDtypes) {
  expect_refused({
      set_dtype("q", DType::i32),
      set_dtype("q", DType::u8),
      set_dtype("o", DType::i32),
      set_dtype("o", DType::u8),
      set_dtype("lse", DType::f16),
      set_dtype("lse", DType::bf16),
      set_dtype("lse", DType::i32),
      set_dtype("alibi_slopes", DType::f16),
      set_dtype("alibi_slopes", DType::f64),
      set_dtype("sinks", DType::bf16),
      set_dtype("k", DType::f16),  // mixed: q is f32
      set_dtype("k", DType::f64),
      set_dtype("v", DType::bf16),
      {"q f16, k and v f32", [](AttentionProblem& p) { p.q.dtype = DType::f16; }, "k",
       "differs from q dtype f16"},
  });
}

TEST_F(Validation, NullPointers) {
  std::vector<Breakage> b;
  for (const std::string& name : kTensors) {
    b.push_back(
        {name + " null", [=](AttentionProblem& p) { arg(p, name).data = nullptr; }, name, "null"});
  }
  expect_refused(b);
}

TEST_F(Validation, MisalignedPointers) {
  std::vector<Breakage> b;
  for (const std::string& name : kTensors) {
    for (int bytes : {1, 2}) {
      b.push_back({name + " + " + std::to_string(bytes) + " bytes",
                   [=](AttentionProblem& p) {
                     TensorView& t = arg(p, name);
                     t.data = static_cast<char*>(t.data) + bytes;
                   },
                   name, "aligned"});
    }
  }
  expect_refused(b);
}

TEST_F(Validation, TensorsOnAnotherDevice) {
  std::vector<Breakage> b;
  for (const std::string name : {"k", "v", "o", "lse", "alibi_slopes", "sinks"}) {
    b.push_back({name + " on cuda:0",
                 [=](AttentionProblem& p) {
                   arg(p, name).device = {DeviceType::cuda, 0};
                 },
                 name, "cuda:0"});
  }
  expect_refused(b);
}

TEST_F(Validation, SizesThatOverflowInt64) {
  constexpr int64_t kHuge = int64_t{1} << 21;  // four of them multiply past 2^63
  std::vector<Breakage> b;
  for (const std::string name : {"q", "k", "v", "o", "lse"}) {
    b.push_back({name + " element count",
                 [=](AttentionProblem& p) {
                   TensorView& t = arg(p, name);
                   for (int d = 0; d < t.rank; ++d) t.shape[size_t(d)] = kHuge;
                 },
                 name, "overflow"});
    b.push_back({name + " stride",
                 [=](AttentionProblem& p) { arg(p, name).stride[0] = int64_t{1} << 62; }, name,
                 "overflow"});
  }
  expect_refused(b);
}

TEST_F(Validation, OutputsThatOverlapThemselves) {
  expect_refused({
      {"o heads stride 0", [](AttentionProblem& p) { p.o.stride[2] = 0; }, "o", "overlaps itself"},
      {"o heads stride 3 < Dv", [](AttentionProblem& p) { p.o.stride[2] = 3; }, "o",
       "overlaps itself"},
      {"o rows stride 1", [](AttentionProblem& p) { p.o.stride[1] = 1; }, "o", "overlaps itself"},
      {"lse rows stride 0", [](AttentionProblem& p) { p.lse->stride[2] = 0; }, "lse",
       "overlaps itself"},
      {"lse heads stride = rows stride",
       [](AttentionProblem& p) { p.lse->stride[1] = p.lse->stride[2]; }, "lse", "overlaps itself"},
  });
}

TEST_F(Validation, OutputsThatOverlapInputsOrEachOther) {
  auto alias = [](const std::string& out, const std::string& in, int64_t elements) {
    return Breakage{out + " inside " + in,
                    [=](AttentionProblem& p) {
                      TensorView& src = arg(p, in);
                      arg(p, out).data =
                          static_cast<char*>(src.data) + elements * dtype_size(src.dtype);
                    },
                    out, "overlap"};
  };
  expect_refused({
      alias("o", "q", 0),
      alias("o", "q", 17),
      alias("o", "k", 5),
      alias("o", "v", 0),
      alias("lse", "q", 3),
      alias("lse", "k", 0),
      alias("lse", "v", 1),
      alias("lse", "o", 0),
      alias("lse", "o", 40),
  });
}

TEST_F(Validation, NonFiniteOptions) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float kNan = std::nanf("");
  std::vector<Breakage> b;
  for (float x : {kNan, kInf, -kInf}) {
    const std::string s = std::to_string(x);
    b.push_back({"scale " + s, [=](AttentionProblem& p) { p.scale = x; }, "scale", "finite"});
    b.push_back({"softcap " + s, [=](AttentionProblem& p) { p.softcap = x; }, "softcap", ""});
  }
  b.push_back({"softcap -1", [](AttentionProblem& p) { p.softcap = -1.0f; }, "softcap", ">= 0"});
  // Values of the head vectors: written into private copies so the fixture's stay valid.
  for (const char* name : {"alibi_slopes", "sinks"}) {
    for (float x : {kNan, kInf, -kInf}) {
      b.push_back({std::string(name) + "[2] = " + std::to_string(x),
                   [this, name, x](AttentionProblem& p) {
                     TensorView& t = arg(p, name);
                     float* copy = static_cast<float*>(static_cast<void*>(scratch_.storage()));
                     for (int64_t h = 0; h < t.shape[0]; ++h) {
                       copy[h] = static_cast<const float*>(t.data)[h * t.stride[0]];
                     }
                     copy[2] = x;
                     t.data = copy;
                     t.stride[0] = 1;
                   },
                   name, std::string(name) + "[2]"});
    }
  }
  expect_refused(b);
}

TEST_F(Validation, InvalidWindows) {
  expect_refused({
      {"left -2", [](AttentionProblem& p) { p.mask = MaskSpec::window(-2, 0); }, "left", "-2"},
      {"right -3", [](AttentionProblem& p) { p.mask = MaskSpec::window(4, -3); }, "right", "-3"},
      {"left -9 topleft",
       [](AttentionProblem& p) { p.mask = MaskSpec::window(-9, 1, Alignment::top_left); }, "left",
       "-9"},
  });
}

}  // namespace
}  // namespace polyhead::testing
