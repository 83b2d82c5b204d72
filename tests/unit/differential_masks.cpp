// Differential tests of masks and packed batches: every mask kind and alignment on Sq < Sk,
// Sq > Sk and Sq = Sk, fully masked rows (o = 0, lse = -inf or the sink), and varlen batches
// with empty sequences and sequences without keys.
#include <cmath>
#include <vector>

#include "unit/differential.h"

namespace polyhead::testing {
namespace {

const std::vector<const char*> kMasks = {"none",
                                         "causal",
                                         "causal:topleft",
                                         "window:0,0",
                                         "window:0,0,topleft",
                                         "window:16,0",
                                         "window:5,9",
                                         "window:-1,3",
                                         "window:7,-1",
                                         "window:-1,-1",
                                         "window:12,4,topleft",
                                         "window:3,-1,topleft",
                                         "window:64,0",
                                         "window:63,64",
                                         "window:100000,100000",
                                         "window:100000,0,topleft",
                                         "window:30,0,sink=4",
                                         "window:0,5,sink=70"};

TEST_P(Differential, EveryMaskOnEveryShape) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{113, 239}, {239, 113}, {130, 130},
                                                           {1, 200},   {200, 1},   {64, 65}};
  std::vector<Case> cases;
  for (const char* mask : kMasks) {
    for (auto [sq, sk] : shapes) {
      Case c = small_case("masks", cases.size());
      c.batch = 1;
      c.seqlen_q = sq;
      c.seqlen_k = sk;
      c.heads_q = 2;
      c.heads_kv = 1;
      c.mask = mask;
      c.dtype = kDtypes[cases.size() % 3];
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

// Runs `c` and checks, against the mask rule itself, that every row that sees no key has
// o = 0 exactly and lse = -inf (or exactly its head's sink logit).
void expect_empty_rows_exact(const std::string& backend, const Case& c) {
  SCOPED_TRACE("backend " + backend + ", " + c.describe());
  Problem p = make_problem(c);
  const RunResult run = run_on_backend(p, backend, c.num_threads);
  if (!run.ran) GTEST_SKIP() << run.skip_reason;
  const MaskSpec mask = MaskSpec::parse(c.mask);
  std::vector<int64_t> q0 = {0}, sq = {c.seqlen_q}, sk = {c.seqlen_k};
  if (c.varlen()) {
    q0.clear(), sq.clear(), sk.clear();
    int64_t start = 0;
    for (size_t s = 0; s < c.seqlens_q.size(); ++s) {
      q0.push_back(start);
      sq.push_back(c.seqlens_q[s]);
      sk.push_back(c.seqlens_k[s]);
      start += c.seqlens_q[s];
    }
  }
  int64_t empty_rows = 0;
  for (int64_t b = 0; b < c.tensor_batch(); ++b) {
    for (size_t s = 0; s < q0.size(); ++s) {
      for (int64_t i = 0; i < sq[s]; ++i) {
        bool any = false;
        for (int64_t j = 0; j < sk[s] && !any; ++j) any = mask_allows(mask, sq[s], sk[s], i, j);
        if (any) continue;
        ++empty_rows;
        const int64_t row = q0[s] + i;
        for (int64_t h = 0; h < c.heads_q; ++h) {
          for (int64_t d = 0; d < c.dim_v; ++d) {
            ASSERT_EQ(p.o.at({b, row, h, d}), 0.0)
                << "o[" << b << "," << row << "," << h << "," << d << "] of a row that sees no key";
          }
          if (p.lse.empty()) continue;
          const double want = c.sinks ? p.sinks.get(h) : -INFINITY;
          ASSERT_EQ(p.lse.at({b, h, row}), want)
              << "lse[" << b << "," << h << "," << row << "] of a row that sees no key";
        }
      }
    }
  }
  EXPECT_GT(empty_rows, 0) << "the case has no fully masked row";
}

std::vector<Case> fully_masked_cases() {
  std::vector<Case> cases;
  auto add = [&](Case c) {
    c.index = cases.size();
    c.dtype = kDtypes[cases.size() % 3];
    cases.push_back(c);
  };
  Case c = small_case("fully_masked", 0);
  c.seqlen_q = 239;  // bottom-right causal, Sq > Sk: the first 202 rows see nothing
  c.seqlen_k = 37;
  c.mask = "causal";
  add(c);
  c.mask = "window:0,0,topleft";  // rows >= Sk see nothing
  add(c);
  c.mask = "window:2,-1,topleft";
  add(c);
  c.mask = "window:-1,-1";
  c.seqlens_q = {7, 37, 0, 5};  // packed sequences without keys
  c.seqlens_k = {0, 40, 9, 0};
  add(c);
  c.seqlens_q = {113};  // one packed sequence, Sq > Sk: rows < 100 see nothing
  c.seqlens_k = {13};
  c.mask = "causal";
  add(c);
  return cases;
}

TEST_P(Differential, FullyMaskedRows) {
  const std::vector<Case> cases = fully_masked_cases();
  POLYHEAD_EXPECT_CASES(backend(), cases);
  for (const Case& c : cases) expect_empty_rows_exact(backend(), c);
}

TEST_P(Differential, FullyMaskedRowsWithSinks) {
  std::vector<Case> cases = fully_masked_cases();
  for (Case& c : cases) c.sinks = true, c.suite = "fully_masked_sinks";
  POLYHEAD_EXPECT_CASES(backend(), cases);
  for (const Case& c : cases) expect_empty_rows_exact(backend(), c);
}

TEST_P(Differential, Varlen) {
  struct Batch {
    std::vector<int32_t> q, k;
  };
  const std::vector<Batch> batches = {
      {{37, 113, 1, 7}, {113, 37, 239, 7}},
      {{0, 7, 0, 37}, {5, 7, 0, 40}},  // sequences without queries, and fully empty ones
      {{37, 20, 5}, {0, 20, 0}},       // sequences without keys
      {{239}, {239}},
      {{1, 1, 1, 1, 1}, {1, 3, 1, 9, 65}},
      {{130, 64, 65}, {64, 130, 65}},
  };
  std::vector<Case> cases;
  for (const Batch& b : batches) {
    for (const char* mask : {"none", "causal", "causal:topleft", "window:9,2"}) {
      Case c = small_case("varlen", cases.size());
      c.seqlens_q = b.q;
      c.seqlens_k = b.k;
      c.mask = mask;
      c.dtype = kDtypes[cases.size() % 3];
      c.alibi = cases.size() % 4 == 1;
      c.sinks = cases.size() % 4 == 2;
      c.lse = cases.size() % 5 != 3;
      cases.push_back(c);
    }
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

TEST_P(Differential, RandomVarlen) {
  RandomSpace space;
  space.layouts = false;
  std::vector<Case> cases;
  for (uint64_t i = 0; cases.size() < (kExtended ? 400u : 60u); ++i) {
    Case c = random_case("random_varlen", i, space);
    if (c.varlen()) cases.push_back(c);
  }
  POLYHEAD_EXPECT_CASES(backend(), cases);
}

}  // namespace
}  // namespace polyhead::testing
