// The fixture of the validation tests: a valid problem (dense, and varlen), a way to break one
// argument, and the check that every entry point refuses it with an Error naming the argument
// while leaving every tensor (outputs included) bit-for-bit untouched.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "support/testing.h"

namespace polyhead::testing {

// One way to make a valid problem invalid.
struct Breakage {
  std::string label;
  std::function<void(AttentionProblem&)> apply;
  std::string argument;  // must appear in the message as a word ("k", "cu_seqlens_q", "scale")
  std::string detail;    // must appear in the message too ("shape[2] = 3", "overflow")
};

// Whether `message` contains `word` delimited by characters that cannot continue a name.
bool names_word(const std::string& message, const std::string& word);

class Validation : public ::testing::Test {
 protected:
  // B=2 Sq=5 Sk=6 Hq=4 Hkv=2 Dqk=8 Dv=6 f32 with lse, ALiBi and sinks.
  static Case dense_case();
  // Two packed sequences: seqlens_q [4, 5], seqlens_k [5, 6] (cu_seqlens_q [0, 4, 9],
  // cu_seqlens_k [0, 5, 11]).
  static Case varlen_case();

  void SetUp() override;
  void use(const Case& c);

  // Applies each breakage to a fresh valid problem and checks every entry point refuses it.
  void expect_refused(const std::vector<Breakage>& breakages);

  Problem problem_;
  AttentionProblem valid_;
  // Extra memory breakages may point tensors into; snapshotted with the problem's tensors.
  HostTensor scratch_;
};

}  // namespace polyhead::testing
