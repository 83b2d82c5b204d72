// Data-dependent masks (LongHeads, DHSA, DMA-style top-k): the library's selection against plain
// re-implementations of the documented rules, row by row.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

#include "masks/mask_oracles.h"

namespace polyhead::masktest {
namespace {

struct Inputs {
  int64_t sq, sk, hq, hkv, d;
  Tensors t;
  MaskInputs in;
  Inputs(int64_t sq_, int64_t sk_, int64_t hq_, int64_t hkv_, int64_t d_, uint32_t seed)
      : sq(sq_), sk(sk_), hq(hq_), hkv(hkv_), d(d_), t(random_qkv(sq_, sk_, hq_, hkv_, d_, seed)) {
    in.q = TensorView::contiguous(t.q.data(), DType::f32, {sq, hq, d});
    in.k = TensorView::contiguous(t.k.data(), DType::f32, {sk, hkv, d});
  }
  double q(int64_t i, int64_t h, int64_t x) const { return t.q[size_t((i * hq + h) * d + x)]; }
  double k(int64_t j, int64_t h, int64_t x) const { return t.k[size_t((j * hkv + h) * d + x)]; }
};

// Indices of the top `k` scores (ties: larger index); `ambiguous` when the k-th and the next
// score are too close for a float-vs-double comparison to be meaningful.
std::vector<int64_t> top(const std::vector<std::pair<double, int64_t>>& scored, int64_t k,
                         bool* ambiguous) {
  auto v = scored;
  std::sort(v.begin(), v.end(), [](auto a, auto b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  });
  if (int64_t(v.size()) > k && k > 0) {
    const double gap = std::abs(v[size_t(k - 1)].first - v[size_t(k)].first);
    *ambiguous |= gap < 1e-3 * (1.0 + std::abs(v[size_t(k)].first));
  }
  std::vector<int64_t> out;
  for (int64_t x = 0; x < std::min<int64_t>(k, int64_t(v.size())); ++x)
    out.push_back(v[size_t(x)].second);
  return out;
}

TEST(Selection, LongHeadsMatchesTheRule) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const Inputs s(70 + seed * 9, 150 + seed * 7, 4, 2, 16, seed);
    const LongHeadsMask m{.chunk = 8, .k = 6};
    const BlockMap map = BlockMap::compile(MaskSpec(m), {s.sq, s.sk, s.hq, s.hkv}, {16, 16}, &s.in);
    int checked = 0, skipped = 0;
    for (int64_t h = 0; h < s.hq; ++h) {
      const int64_t hk = h / (s.hq / s.hkv);
      for (int64_t i = 0; i < s.sq; ++i) {
        const int64_t p = i + s.sk - s.sq, complete = (p + 1) / m.chunk;
        std::vector<bool> sel(size_t(complete), complete <= m.k - 1);
        bool ambiguous = false;
        if (complete > m.k - 1) {
          std::vector<std::pair<double, int64_t>> scored;
          for (int64_t c = 1; c + 1 < complete; ++c) {
            double dot = 0;
            for (int64_t x = 0; x < s.d; ++x) {
              double mean = 0;
              for (int64_t j = c * m.chunk; j < (c + 1) * m.chunk; ++j) mean += s.k(j, hk, x);
              dot += s.q(i, h, x) * mean / double(m.chunk);
            }
            scored.push_back({dot, c});
          }
          for (int64_t c : top(scored, m.k - 3, &ambiguous)) sel[size_t(c)] = true;
          sel[0] = sel[size_t(complete - 1)] = true;
        }
        if (ambiguous) {
          ++skipped;
          continue;
        }
        ++checked;
        for (int64_t j = 0; j < s.sk; ++j) {
          const bool want = j <= p && (j >= complete * m.chunk || sel[size_t(j / m.chunk)]);
          ASSERT_EQ(map.allowed(h, i, j), want)
              << "seed " << seed << " h " << h << " i " << i << " j " << j;
        }
      }
    }
    EXPECT_LT(skipped, checked / 10 + 1);
    EXPECT_EQ(check_block_map(map), "");
  }
}

TEST(Selection, DhsaMatchesTheRule) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const Inputs s(90 + seed * 5, 130 + seed * 11, 4, 2, 12, seed + 10);
    const DhsaMask m{.chunk = 8, .k = 3, .recent = 12};
    const BlockMap map = BlockMap::compile(MaskSpec(m), {s.sq, s.sk, s.hq, s.hkv}, {16, 16}, &s.in);
    const int64_t c = m.chunk, n_chunks = (s.sk + c - 1) / c;
    for (int64_t b = 0; b * c < s.sq; ++b) {
      const int64_t r1 = std::min(s.sq, (b + 1) * c);
      const int64_t e = r1 - 1 + s.sk - s.sq, tail = std::max<int64_t>(0, e - m.recent + 1);
      std::vector<double> qbar(size_t(s.d), 0.0);
      for (int64_t i = b * c; i < r1; ++i) {
        for (int64_t h = 0; h < s.hq; ++h) {
          for (int64_t x = 0; x < s.d; ++x)
            qbar[size_t(x)] += s.q(i, h, x) / double((r1 - b * c) * s.hq);
        }
      }
      std::vector<std::pair<double, int64_t>> scored;
      for (int64_t ch = 1; ch < n_chunks && ch * c <= e && ch * c < tail; ++ch) {
        const int64_t j1 = std::min(s.sk, (ch + 1) * c), n = j1 - ch * c;
        double dot = 0;
        for (int64_t x = 0; x < s.d; ++x) {
          double mean = 0;
          for (int64_t j = ch * c; j < j1; ++j) {
            for (int64_t h = 0; h < s.hkv; ++h) mean += s.k(j, h, x);
          }
          dot += qbar[size_t(x)] * std::sqrt(double(n)) * mean / double(n * s.hkv);
        }
        scored.push_back({dot, ch});
      }
      bool ambiguous = false;
      std::vector<bool> sel(size_t(n_chunks), false);
      for (int64_t ch : top(scored, m.k, &ambiguous)) sel[size_t(ch)] = true;
      if (tail > 0) sel[0] = true;
      if (ambiguous) continue;
      for (int64_t i = b * c; i < r1; ++i) {
        const int64_t p = i + s.sk - s.sq;
        for (int64_t j = 0; j < s.sk; ++j) {
          const bool want = j <= p && (j >= tail || sel[size_t(j / c)]);
          for (int64_t h = 0; h < s.hq; ++h) {
            ASSERT_EQ(map.allowed(h, i, j), want) << "seed " << seed << " i " << i << " j " << j;
          }
        }
      }
    }
    EXPECT_EQ(check_block_map(map), "");
  }
}

TEST(Selection, TopKMatchesTheRuleForBatchedAndPackedScores) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  const Inputs s(60, 100, 4, 2, 8, 3);
  auto scores = std::make_shared<std::vector<float>>(size_t(s.hkv * 130));
  for (float& x : *scores) x = nd(rng);
  for (int packed = 0; packed < 2; ++packed) {
    TopKMask m;
    m.k = 5;
    m.window = 17;
    MaskInputs in = s.in;
    if (packed) {  // [Hkv, total_k], this sequence starting at key 30
      m.scores.view = TensorView::contiguous(scores->data(), DType::f32, {s.hkv, 130});
      in.k_start = 30;
    } else {  // [B = 1, Hkv, Sk]
      m.scores.view = TensorView::contiguous(scores->data(), DType::f32, {1, s.hkv, 100});
    }
    m.scores.owner = scores;
    const BlockMap map = BlockMap::compile(MaskSpec(m), {s.sq, s.sk, s.hq, s.hkv}, {16, 16}, &in);
    for (int64_t h = 0; h < s.hq; ++h) {
      const int64_t hk = h / (s.hq / s.hkv);
      const int64_t row_len = packed ? 130 : 100;
      for (int64_t i = 0; i < s.sq; ++i) {
        const int64_t p = i + s.sk - s.sq, lo = std::max<int64_t>(0, p - m.window + 1);
        std::vector<std::pair<double, int64_t>> scored;
        for (int64_t j = lo; j <= p; ++j) {
          scored.push_back({(*scores)[size_t(hk * row_len + in.k_start + j)], j});
        }
        bool ambiguous = false;
        const std::vector<int64_t> keep = top(scored, m.k, &ambiguous);
        for (int64_t j = 0; j < s.sk; ++j) {
          const bool want = std::find(keep.begin(), keep.end(), j) != keep.end();
          ASSERT_EQ(map.allowed(h, i, j), want)
              << "packed " << packed << " h " << h << " i " << i << " j " << j;
        }
      }
    }
    EXPECT_EQ(check_block_map(map), "");
  }
}

TEST(Selection, DynamicMasksNeedTheTensors) {
  EXPECT_THROW(BlockMap::compile(MaskSpec::parse("longheads:chunk=8,k=4"), {16, 16, 1, 1}, {8, 8}),
               Error);
}

}  // namespace
}  // namespace polyhead::masktest
