// Error paths of packed variable-length batches (cu_seqlens_q / cu_seqlens_k), and of backend
// selection: unknown names and backends that do not support a problem.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "unit/validation_fixture.h"

namespace polyhead::testing {
namespace {

class VarlenValidation : public Validation {
 protected:
  void SetUp() override { use(varlen_case()); }

  // Points cu_seqlens_`which` at a private copy holding `values` (the fixture's stay valid).
  Breakage offsets(const std::string& which, std::vector<int32_t> values, std::string argument,
                   std::string detail) {
    std::string label = "cu_seqlens_";
    label += which;
    label += " = [";
    for (size_t n = 0; n < values.size(); ++n) {
      if (n) label += ",";
      label += std::to_string(values[n]);
    }
    label += "]";
    auto apply = [this, which, values](AttentionProblem& p) {
      auto* base = static_cast<int32_t*>(static_cast<void*>(scratch_.storage()));
      int32_t* copy = base + (which == "q" ? 0 : 64);
      std::memcpy(copy, values.data(), values.size() * sizeof(int32_t));
      TensorView& t = which == "q" ? *p.cu_seqlens_q : *p.cu_seqlens_k;
      t.data = copy;
      t.shape[0] = int64_t(values.size());
      t.stride[0] = 1;
    };
    return {label, apply, std::move(argument), std::move(detail)};
  }
};

// total_q = 9, total_k = 11; valid offsets are [0, 4, 9] and [0, 5, 11].
TEST_F(VarlenValidation, MalformedOffsets) {
  expect_refused({
      offsets("q", {1, 4, 9}, "cu_seqlens_q", "cu_seqlens_q[0] = 1"),
      offsets("k", {-1, 5, 11}, "cu_seqlens_k", "cu_seqlens_k[0] = -1"),
      offsets("q", {0, 6, 4}, "cu_seqlens_q", "non-decreasing"),
      offsets("k", {0, -2, 11}, "cu_seqlens_k", "non-decreasing"),
      offsets("q", {0, 4, 8}, "cu_seqlens_q", "cu_seqlens_q[2] = 8"),
      offsets("k", {0, 5, 10}, "cu_seqlens_k", "k.shape[1]"),
      offsets("q", {0, 20, 9}, "cu_seqlens_q", "cu_seqlens_q[1] = 20"),
      offsets("k", {0, 5, 12}, "cu_seqlens_k", "cu_seqlens_k[2] = 12"),
      offsets("k", {0, 2147483647, 11}, "cu_seqlens_k", "2147483647"),
  });
}

TEST_F(VarlenValidation, MismatchedOffsetCounts) {
  expect_refused({
      offsets("q", {0, 4, 4, 9}, "cu_seqlens_q", "entries"),
      offsets("k", {0, 11}, "cu_seqlens_k", "entries"),
  });
  // One offset each: no sequence at all.
  Breakage both_single = {"both [0]",
                          [this](AttentionProblem& p) {
                            offsets("q", {0}, "", "").apply(p);
                            offsets("k", {0}, "", "").apply(p);
                          },
                          "cu_seqlens_q", "nseq + 1"};
  expect_refused({both_single});
}

TEST_F(VarlenValidation, OnlyOneGiven) {
  expect_refused({
      {"no cu_seqlens_k", [](AttentionProblem& p) { p.cu_seqlens_k.reset(); }, "cu_seqlens_k",
       "together"},
      {"no cu_seqlens_q", [](AttentionProblem& p) { p.cu_seqlens_q.reset(); }, "cu_seqlens_q",
       "together"},
  });
}

TEST_F(VarlenValidation, WrongDtypeRankSizePointer) {
  std::vector<Breakage> b;
  for (const std::string name : {"cu_seqlens_q", "cu_seqlens_k"}) {
    auto view = [name](AttentionProblem& p) -> TensorView& {
      return name == "cu_seqlens_q" ? *p.cu_seqlens_q : *p.cu_seqlens_k;
    };
    for (DType t : {DType::f32, DType::u8, DType::f64}) {
      b.push_back({name + " dtype", [=](AttentionProblem& p) { view(p).dtype = t; }, name,
                   std::string("dtype ") + std::string(dtype_name(t))});
    }
    b.push_back({name + " rank 2", [=](AttentionProblem& p) { view(p).rank = 2; }, name, "rank"});
    b.push_back(
        {name + " null", [=](AttentionProblem& p) { view(p).data = nullptr; }, name, "null"});
    b.push_back({name + " misaligned",
                 [=](AttentionProblem& p) { view(p).data = static_cast<char*>(view(p).data) + 2; },
                 name, "aligned"});
    b.push_back({name + " on cuda:1",
                 [=](AttentionProblem& p) {
                   view(p).device = {DeviceType::cuda, 1};
                 },
                 name, "cuda:1"});
  }
  // Zero entries: both, so that the counts agree and the size check is reached.
  b.push_back({"zero entries",
               [](AttentionProblem& p) { p.cu_seqlens_q->shape[0] = p.cu_seqlens_k->shape[0] = 0; },
               "cu_seqlens_q", "shape[0] = 0"});
  expect_refused(b);
}

// cu_seqlens given with a batch of two dense sequences (the tensors are valid for B = 2).
TEST_F(Validation, PackedBatchMustBeOne) {
  Case c = dense_case();
  c.lse = false;
  use(c);
  problem_.cu_seqlens_q = HostTensor(DType::i32, {3});
  problem_.cu_seqlens_k = HostTensor(DType::i32, {3});
  for (int64_t n = 0; n < 3; ++n) {
    problem_.cu_seqlens_q.set(n, double(n * 5 / 2));  // [0, 2, 5]
    problem_.cu_seqlens_k.set(n, double(n * 3));      // [0, 3, 6]
  }
  valid_ = problem_.view();
  expect_refused({{"B = 2 with cu_seqlens", [](AttentionProblem&) {}, "q", "q.shape[0] = 2"}});
}

// Backend names: unknown ones are refused by attention() and answered no by supports().
TEST_F(Validation, UnknownBackend) {
  const auto before = problem_.o.snapshot();
  for (const char* name : {"tpu", "", "CPU", "reference "}) {
    SCOPED_TRACE(std::string("backend '") + name + "'");
    POLYHEAD_EXPECT_ERROR(attention(valid_, {name}), std::string("'") + name + "'");
    POLYHEAD_EXPECT_ERROR(attention(valid_, {name}), "reference");  // lists the available ones
    const Status st = supports(valid_, name);
    EXPECT_FALSE(st.ok);
    EXPECT_NE(st.reason.find(std::string("'") + name + "'"), std::string::npos) << st.reason;
  }
  EXPECT_TRUE(problem_.o.snapshot() == before);
}

TEST_F(Validation, BackendThatDoesNotSupportTheProblem) {
  Case c = dense_case();
  c.dtype = DType::f64;
  c.o_dtype = DType::f64;
  use(c);
  problem_.o.fill_canary();
  const auto before = problem_.o.snapshot();
  if (backend_unavailable("cpu").empty()) {
    const Status st = supports(valid_, "cpu");
    EXPECT_FALSE(st.ok);
    EXPECT_NE(st.reason.find("f64"), std::string::npos) << st.reason;
    POLYHEAD_EXPECT_ERROR(attention(valid_, {"cpu"}), "backend 'cpu' does not support");
    POLYHEAD_EXPECT_ERROR(attention(valid_, {"cpu"}), "f64");
  }
  // The cuda backend, where compiled, needs GPU memory; where not, it is not available.
  POLYHEAD_EXPECT_ERROR(attention(valid_, {"cuda"}), "'cuda'");
  EXPECT_FALSE(supports(valid_, "cuda").ok);
  EXPECT_TRUE(problem_.o.snapshot() == before);
  // f64 runs on the reference, which is what auto picks.
  EXPECT_EQ(choose_backend(valid_), "reference");
}

}  // namespace
}  // namespace polyhead::testing
