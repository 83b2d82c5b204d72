// The oracle itself: the `reference` backend against a second, deliberately naive reading of
// DESIGN.md section 2 written here (one row at a time, no shared code with the library).
#include <cmath>
#include <vector>

#include "support/testing.h"

namespace polyhead::testing {
namespace {

struct Naive {
  std::vector<double> o;    // [B, Sq, Hq, Dv] row-major
  std::vector<double> lse;  // [B, Hq, Sq]
};

Naive naive_attention(const Problem& p) {
  const Case& c = p.spec;
  const int64_t b_count = c.tensor_batch(), tq = c.total_q(), hq = c.heads_q;
  const int64_t group = c.heads_q / c.heads_kv;
  const MaskSpec mask = MaskSpec::parse(c.mask);
  const double scale = c.scale ? double(*c.scale) : double(float(1.0 / std::sqrt(c.dim_qk)));
  Naive n{std::vector<double>(size_t(b_count * tq * hq * c.dim_v), 0.0),
          std::vector<double>(size_t(b_count * hq * tq), 0.0)};
  // Sequences as (batch, first q token, Sq, first k token, Sk).
  struct Seq {
    int64_t b, q0, sq, k0, sk;
  };
  std::vector<Seq> seqs;
  if (c.varlen()) {
    int64_t q0 = 0, k0 = 0;
    for (size_t s = 0; s < c.seqlens_q.size(); ++s) {
      seqs.push_back({0, q0, c.seqlens_q[s], k0, c.seqlens_k[s]});
      q0 += c.seqlens_q[s];
      k0 += c.seqlens_k[s];
    }
  } else {
    for (int64_t b = 0; b < b_count; ++b) seqs.push_back({b, 0, c.seqlen_q, 0, c.seqlen_k});
  }
  for (const Seq& s : seqs) {
    const bool top_left = mask.alignment() == Alignment::top_left;
    for (int64_t h = 0; h < hq; ++h) {
      for (int64_t i = 0; i < s.sq; ++i) {
        const int64_t pos = top_left ? i : i + s.sk - s.sq;
        std::vector<double> logits;
        std::vector<int64_t> keys;
        for (int64_t j = 0; j < s.sk; ++j) {
          if (!mask_allows(mask, s.sq, s.sk, i, j)) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < c.dim_qk; ++d) {
            dot += p.q.at({s.b, s.q0 + i, h, d}) * p.k.at({s.b, s.k0 + j, h / group, d});
          }
          double x = scale * dot;
          if (c.softcap > 0) x = c.softcap * std::tanh(x / c.softcap);
          if (c.alibi) x -= p.alibi_slopes.get(h) * double(std::abs(pos - j));
          logits.push_back(x);
          keys.push_back(j);
        }
        double m = c.sinks ? p.sinks.get(h) : -INFINITY;
        for (double x : logits) m = std::max(m, x);
        double lse = -INFINITY;
        if (!logits.empty() || c.sinks) {
          double sum = c.sinks ? std::exp(p.sinks.get(h) - m) : 0.0;
          for (double x : logits) sum += std::exp(x - m);
          lse = m + std::log(sum);
        }
        n.lse[size_t((s.b * hq + h) * tq + s.q0 + i)] = lse;
        for (size_t t = 0; t < keys.size(); ++t) {
          const double w = std::exp(logits[t] - lse);
          for (int64_t d = 0; d < c.dim_v; ++d) {
            n.o[size_t(((s.b * tq + s.q0 + i) * hq + h) * c.dim_v + d)] +=
                w * p.v.at({s.b, s.k0 + keys[t], h / group, d});
          }
        }
      }
    }
  }
  return n;
}

TEST(Reference, AgreesWithANaiveReadingOfTheSemantics) {
  RandomSpace space;
  space.max_work = 3e5;
  const int cases = kExtended ? 1000 : 150;
  for (int index = 0; index < cases; ++index) {
    const Case c = random_case("reference", uint64_t(index), space);
    SCOPED_TRACE(c.describe());
    const Problem p = make_problem(c);
    const Expected e = reference_outputs(p.view());
    const Naive n = naive_attention(p);
    for (int64_t f = 0; f < e.o.numel(); ++f) {
      ASSERT_NEAR(e.o.get(f), n.o[size_t(f)], 1e-12 * (1.0 + std::abs(n.o[size_t(f)])))
          << "o" << e.o.index_string(f);
    }
    for (int64_t f = 0; f < e.lse.numel(); ++f) {
      if (std::isinf(n.lse[size_t(f)])) {
        ASSERT_EQ(e.lse.get(f), n.lse[size_t(f)]) << "lse" << e.lse.index_string(f);
      } else {
        ASSERT_NEAR(e.lse.get(f), n.lse[size_t(f)], 1e-12 * (1.0 + std::abs(n.lse[size_t(f)])))
            << "lse" << e.lse.index_string(f);
      }
    }
  }
}

// A case small enough to follow by hand: one query, two keys, D = 1, scale 1.
TEST(Reference, HandComputedCase) {
  Case c;
  c.seqlen_q = 1;
  c.seqlen_k = 2;
  c.dim_qk = c.dim_v = 1;
  c.scale = 1.0f;
  c.dtype = DType::f64;
  c.o_dtype = DType::f64;
  Problem p = make_problem(c);
  p.q.set(0, 1.0);
  p.k.set(0, 0.0);
  p.k.set(1, std::log(3.0));  // logits 0 and log 3: weights 1/4 and 3/4
  p.v.set(0, 2.0);
  p.v.set(1, 6.0);
  attention(p.view(), {"reference"});
  EXPECT_NEAR(p.o.get(0), 0.25 * 2.0 + 0.75 * 6.0, 1e-15);
  EXPECT_NEAR(p.lse.get(0), std::log(4.0), 1e-7);  // lse is f32
}

}  // namespace
}  // namespace polyhead::testing
