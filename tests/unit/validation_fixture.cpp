#include "unit/validation_fixture.h"

#include <cctype>
#include <functional>

namespace polyhead::testing {

bool names_word(const std::string& message, const std::string& word) {
  auto is_name_char = [](char ch) { return std::isalnum(uint8_t(ch)) || ch == '_'; };
  for (size_t at = message.find(word); at != std::string::npos; at = message.find(word, at + 1)) {
    const bool starts = at == 0 || !is_name_char(message[at - 1]);
    const size_t end = at + word.size();
    const bool ends = end == message.size() || !is_name_char(message[end]);
    if (starts && ends) return true;
  }
  return false;
}

Case Validation::dense_case() {
  Case c;
  c.suite = "validation";
  c.batch = 2;
  c.seqlen_q = 5;
  c.seqlen_k = 6;
  c.heads_q = 4;
  c.heads_kv = 2;
  c.dim_qk = 8;
  c.dim_v = 6;
  c.alibi = true;
  c.sinks = true;
  return c;
}

Case Validation::varlen_case() {
  Case c = dense_case();
  c.alibi = c.sinks = false;
  c.seqlens_q = {4, 5};
  c.seqlens_k = {5, 6};
  return c;
}

void Validation::SetUp() {
  use(dense_case());
}

void Validation::use(const Case& c) {
  problem_ = make_problem(c);
  valid_ = problem_.view();
  scratch_ = HostTensor(DType::f32, {4096});
}

namespace {

// Every public entry point that takes a problem; each must refuse an invalid one.
struct Entry {
  const char* name;
  std::function<void(const AttentionProblem&)> call;
};

std::vector<Entry> entry_points() {
  std::vector<Entry> entries = {
      {"validate", [](const AttentionProblem& p) { validate(p); }},
      {"attention(reference)", [](const AttentionProblem& p) { attention(p, {"reference"}); }},
      {"attention(auto)", [](const AttentionProblem& p) { attention(p, {"auto"}); }},
      {"supports(reference)", [](const AttentionProblem& p) { supports(p, "reference"); }},
      {"choose_backend", [](const AttentionProblem& p) { choose_backend(p); }},
      {"unmasked_pairs", [](const AttentionProblem& p) { unmasked_pairs(p); }},
      {"forward_flops", [](const AttentionProblem& p) { forward_flops(p); }},
  };
  if (backend_unavailable("cpu").empty()) {
    entries.push_back({"attention(cpu)", [](const AttentionProblem& p) { attention(p, {"cpu"}); }});
  }
  return entries;
}

}  // namespace

void Validation::expect_refused(const std::vector<Breakage>& breakages) {
  const std::vector<Entry> entries = entry_points();
  for (const Breakage& b : breakages) {
    SCOPED_TRACE("breakage: " + b.label);
    std::vector<const HostTensor*> all = {&problem_.q, &problem_.k, &problem_.v, &problem_.o,
                                          &scratch_};
    for (const HostTensor* t : {&problem_.lse, &problem_.cu_seqlens_q, &problem_.cu_seqlens_k,
                                &problem_.alibi_slopes, &problem_.sinks}) {
      if (!t->empty()) all.push_back(t);
    }
    problem_.o.fill_canary();
    if (!problem_.lse.empty()) problem_.lse.fill_canary();
    AttentionProblem broken = valid_;
    b.apply(broken);
    std::vector<std::vector<std::byte>> before;
    for (const HostTensor* t : all) before.push_back(t->snapshot());

    for (const Entry& e : entries) {
      std::string message;
      try {
        e.call(broken);
        ADD_FAILURE() << e.name << " accepted the problem";
        continue;
      } catch (const Error& error) {
        message = error.what();
      }
      EXPECT_TRUE(names_word(message, b.argument))
          << e.name << ": \"" << message << "\" does not name the argument " << b.argument;
      EXPECT_NE(message.find(b.detail), std::string::npos)
          << e.name << ": \"" << message << "\" does not contain \"" << b.detail << "\"";
    }
    for (size_t t = 0; t < all.size(); ++t) {
      EXPECT_TRUE(all[t]->snapshot() == before[t])
          << "tensor " << all[t]->describe() << " changed although the problem was refused";
    }
  }
}

}  // namespace polyhead::testing
