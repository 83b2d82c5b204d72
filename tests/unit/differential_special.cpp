// NaN and Inf in q, k or v: outputs must be non-finite exactly where the reference's are (the
// comparison matches NaN with NaN and Inf with the same Inf), and nowhere else: a NaN at a key
// that a row cannot see (masked, another kv head, another packed sequence) must not leak.
#include <cmath>
#include <limits>
#include <vector>

#include "unit/differential.h"

namespace polyhead::testing {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNan = std::nan("");

// A causal 100 x 100 case (one key tile boundary at 64 for 64-wide tiles) with Hq=4, Hkv=2.
Case special_case(uint64_t index, Poke poke, const char* mask = "causal") {
  Case c = small_case("special", index);
  c.batch = 2;
  c.seqlen_q = c.seqlen_k = 100;
  c.mask = mask;
  c.dtype = kDtypes[index % 3];
  c.pokes = {poke};
  return c;
}

TEST_P(Differential, NanInQ) {
  std::vector<Case> cases;
  for (const char* mask : {"none", "causal", "window:3,3"}) {
    cases.push_back(special_case(cases.size(), {'q', {1, 5, 3, 7}, kNan}, mask));
    cases.push_back(special_case(cases.size(), {'q', {0, 99, 0, 0}, kNan}, mask));
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, NanInK) {
  std::vector<Case> cases;
  for (const char* mask : {"none", "causal", "window:8,8", "causal:topleft"}) {
    cases.push_back(special_case(cases.size(), {'k', {0, 20, 1, 3}, kNan}, mask));
    cases.push_back(special_case(cases.size(), {'k', {1, 99, 0, 0}, kNan}, mask));  // last key
    cases.push_back(special_case(cases.size(), {'k', {1, 64, 0, 0}, kNan}, mask));  // tile start
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, NanInV) {
  std::vector<Case> cases;
  for (const char* mask : {"none", "causal", "window:8,8", "causal:topleft", "window:0,0"}) {
    cases.push_back(special_case(cases.size(), {'v', {0, 20, 1, 3}, kNan}, mask));
    cases.push_back(special_case(cases.size(), {'v', {1, 99, 0, 31}, kNan}, mask));
    cases.push_back(special_case(cases.size(), {'v', {1, 63, 1, 0}, kNan}, mask));  // tile end
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

// Keys the rows cannot see: the last key under causal (only the last row sees it), keys left
// of a sliding window, keys of a sequence's neighbour in a packed batch.
TEST_P(Differential, NanAtMaskedKeysDoesNotLeak) {
  std::vector<Case> cases;
  for (char t : {'k', 'v'}) {
    cases.push_back(special_case(cases.size(), {t, {0, 99, 0, 5}, kNan}, "causal"));
    cases.push_back(special_case(cases.size(), {t, {0, 10, 1, 0}, kNan}, "window:8,0"));
    cases.push_back(special_case(cases.size(), {t, {1, 70, 0, 2}, kNan}, "window:4,4"));
    cases.push_back(special_case(cases.size(), {t, {1, 0, 0, 0}, kNan}, "window:4,4,topleft"));
    Case c = special_case(cases.size(), {t, {0, 49, 1, 1}, kNan}, "none");
    c.seqlens_q = {50, 50};  // the last key of sequence 0: sequence 1 must stay finite
    c.seqlens_k = {50, 50};
    cases.push_back(c);
    c.index = cases.size();
    c.pokes = {{t, {0, 50, 0, 1}, kNan}};  // the first key of sequence 1
    c.mask = "causal";
    cases.push_back(c);
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, InfinitiesInQKV) {
  std::vector<Case> cases;
  for (double x : {kInf, -kInf}) {
    for (char t : {'q', 'k', 'v'}) {
      for (const char* mask : {"none", "causal"}) {
        cases.push_back(special_case(cases.size(), {t, {0, 30, 1, 4}, x}, mask));
      }
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

// Non-finite inputs through the options: softcap (tanh of +-Inf is +-1, of NaN is NaN), sinks
// and ALiBi.
TEST_P(Differential, NonFiniteInputsWithOptions) {
  std::vector<Case> cases;
  for (double x : {kNan, kInf, -kInf}) {
    for (char t : {'q', 'k'}) {
      Case c = special_case(cases.size(), {t, {0, 30, 1, 4}, x}, "causal");
      c.softcap = 5.0f;
      cases.push_back(c);
      c.index = cases.size();
      c.softcap = 0.0f;
      c.sinks = true;
      cases.push_back(c);
      c.index = cases.size();
      c.sinks = false;
      c.alibi = true;
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

// Large finite inputs: logits far from 0 but no overflow; nothing may turn non-finite.
TEST_P(Differential, LargeFiniteInputs) {
  std::vector<Case> cases;
  for (DType t : kDtypes) {
    Case c = small_case("large", cases.size());
    c.dtype = t;
    c.input_scale = 40.0f;  // logits of ~ 1e4: exp must be taken relative to the row max
    c.mask = "causal";
    cases.push_back(c);
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

}  // namespace
}  // namespace polyhead::testing
