// Shared helpers of the test suites: cases, host tensors, the fp64 reference, running a case on
// any backend (the GPU included) and comparing it with the reference (DESIGN.md section 6).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "polyhead/polyhead.h"
#include "support/case.h"
#include "support/compare.h"
#include "support/host_tensor.h"
#include "support/random.h"

namespace polyhead::testing {

// The extended tier (CMake option POLYHEAD_TESTS_EXTENDED) runs more and larger cases.
#ifdef POLYHEAD_TESTS_EXTENDED
inline constexpr bool kExtended = true;
#else
inline constexpr bool kExtended = false;
#endif

// The oracle's answer: f64 o [B, Sq, Hq, Dv] and lse [B, Hq, Sq] from the `reference` backend,
// fed f64 copies of the (already rounded) inputs of a host problem.
struct Expected {
  HostTensor o, lse;
};
Expected reference_outputs(const AttentionProblem& host_problem);

// Empty when `backend` is compiled in and usable on this machine; otherwise why not.
std::string backend_unavailable(std::string_view backend);

struct RunResult {
  bool ran = false;
  std::string skip_reason;  // why it did not run: no GPU, or supports() refused the case
};

// Poisons p.o and p.lse with the canary, then runs p on `backend`. For "cuda" the inputs are
// copied to the GPU and the outputs back into p.o and p.lse. Library errors propagate.
RunResult run_on_backend(Problem& p, std::string_view backend, int num_threads = 0);

struct CaseResult {
  enum Kind { passed, failed, skipped };
  Kind kind = passed;
  std::string message;  // the backend, the whole case and what went wrong
  Verdict verdict;
};

// Generates the case, runs it on `backend` and compares it with the reference. With the
// environment variable POLYHEAD_TEST_ERRORS set, prints every case's errors (the data behind
// the tolerances of compare.cpp).
CaseResult check_case(const Case& c, std::string_view backend);

struct Summary {
  int passed = 0, failed = 0, skipped = 0;
  std::string skip_reason;  // of the first skipped case
};

// check_case over every case; each failure is reported with ADD_FAILURE and the whole case.
Summary expect_cases(std::string_view backend, const std::vector<Case>& cases);

// The mask rule of DESIGN.md section 2, written out independently of the library: may query
// row i see key j (0 <= j < seqlen_k) in a sequence of seqlen_q queries and seqlen_k keys?
bool mask_allows(const MaskSpec& spec, int64_t seqlen_q, int64_t seqlen_k, int64_t i, int64_t j);

}  // namespace polyhead::testing

// Runs the cases; skips the test (with the reason) if the backend ran none of them.
#define POLYHEAD_EXPECT_CASES(backend, cases)                           \
  do {                                                                  \
    const ::polyhead::testing::Summary polyhead_summary_ =              \
        ::polyhead::testing::expect_cases((backend), (cases));          \
    if (polyhead_summary_.passed + polyhead_summary_.failed == 0)       \
      GTEST_SKIP() << "no case ran: " << polyhead_summary_.skip_reason; \
  } while (0)

// Expects `statement` to throw polyhead::Error whose message contains `substring`.
#define POLYHEAD_EXPECT_ERROR(statement, substring)                                            \
  do {                                                                                         \
    bool polyhead_thrown_ = false;                                                             \
    std::string polyhead_message_;                                                             \
    try {                                                                                      \
      statement;                                                                               \
    } catch (const ::polyhead::Error& polyhead_error_) {                                       \
      polyhead_thrown_ = true;                                                                 \
      polyhead_message_ = polyhead_error_.what();                                              \
    }                                                                                          \
    if (!polyhead_thrown_) {                                                                   \
      ADD_FAILURE() << #statement << " threw no polyhead::Error";                              \
    } else {                                                                                   \
      EXPECT_NE(polyhead_message_.find(substring), std::string::npos)                          \
          << #statement << ": the message \"" << polyhead_message_ << "\" does not contain \"" \
          << (substring) << "\"";                                                              \
    }                                                                                          \
  } while (0)

// Runs one case; skips the test (with the reason) if the backend refused it.
#define POLYHEAD_EXPECT_CASE(backend, c) POLYHEAD_EXPECT_CASES((backend), std::vector{(c)})
