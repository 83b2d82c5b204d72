// Data-dependent masks: the selection runs here, on the host, for the cpu and reference
// backends (kernels.md sections 9, 11, 12). Each rule stores its selection and answers the
// element rule and row intervals from it. All three are causal with bottom-right alignment.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/mask_rule.h"
#include "core/problem_access.h"
#include "polyhead/error.h"

namespace polyhead::detail {
namespace {

// One row of a [S, H, D] view as fp32.
void load_vec(const TensorView& t, int64_t s, int64_t h, float* out) {
  const int64_t base = s * t.stride[0] + h * t.stride[1];
  for (int64_t d = 0; d < t.shape[2]; ++d)
    out[d] = load_f32(t.data, t.dtype, base + d * t.stride[2]);
}

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

// Indices of the `k` largest scores (ties: the larger index; NaN ranks lowest), ascending.
void top_k(const std::vector<float>& score, const std::vector<int64_t>& cand, int64_t k,
           std::vector<int64_t>& out) {
  out = cand;
  auto better = [&](int64_t a, int64_t b) {
    const float sa = score[size_t(a)], sb = score[size_t(b)];
    const bool na = std::isnan(sa), nb = std::isnan(sb);
    if (na != nb) return nb;
    if (!na && sa != sb) return sa > sb;
    return a > b;
  };
  if (int64_t(out.size()) > k) {
    std::nth_element(out.begin(), out.begin() + k, out.end(), better);
    out.resize(size_t(k));
  }
  std::sort(out.begin(), out.end());
}

// Rows whose selection is a sorted list of key chunks (or of keys) plus a contiguous tail,
// all clipped causally at pos(i).
class SelectionRule : public MaskRule {
 public:
  SelectionRule(const MaskGeometry& g, int64_t unit) : MaskRule(g), unit_(unit) {}

  bool allowed(int64_t h, int64_t i, int64_t j) const override {
    const Row& r = rows_[size_t(index(h, i))];
    if (j > pos(i) || j < 0) return false;
    if (j >= r.tail) return true;
    const auto b = items_.begin() + r.begin, e = items_.begin() + r.end;
    return std::binary_search(b, e, j / unit_);
  }
  void row_intervals(int64_t h, int64_t i, std::vector<KeyInterval>& out) const override {
    out.clear();
    const int64_t end = std::min(pos(i) + 1, geometry_.seqlen_k);
    if (end <= 0) return;
    const Row& r = rows_[size_t(index(h, i))];
    for (int64_t t = r.begin; t < r.end; ++t) {
      const int64_t u = items_[size_t(t)];
      append_interval(out, u * unit_, std::min(end, std::min((u + 1) * unit_, r.tail)));
    }
    append_interval(out, std::max<int64_t>(r.tail, 0), end);
  }

 protected:
  struct Row {
    int64_t begin = 0, end = 0;  // selected units items_[begin, end), ascending
    int64_t tail = 0;            // keys [tail, pos(i)] are visible too
  };
  int64_t pos(int64_t i) const { return i + geometry_.seqlen_k - geometry_.seqlen_q; }
  virtual int64_t index(int64_t h, int64_t i) const = 0;

  int64_t unit_;  // keys per selected unit (chunk size, or 1 for key-level selection)
  std::vector<Row> rows_;
  std::vector<int64_t> items_;
};

// Fills rows_/items_ from per-row selections computed in parallel.
template <typename F>
void build_rows(int64_t n_rows, F&& select, std::vector<int64_t>& items,
                std::vector<int64_t>& begin, std::vector<int64_t>& tails) {
  std::vector<std::vector<int64_t>> sel(static_cast<size_t>(n_rows));
  tails.assign(size_t(n_rows), 0);
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n_rows; ++r) select(r, sel[size_t(r)], tails[size_t(r)]);
  begin.assign(size_t(n_rows) + 1, 0);
  for (int64_t r = 0; r < n_rows; ++r)
    begin[size_t(r) + 1] = begin[size_t(r)] + int64_t(sel[size_t(r)].size());
  items.resize(size_t(begin.back()));
  for (int64_t r = 0; r < n_rows; ++r) {
    std::copy(sel[size_t(r)].begin(), sel[size_t(r)].end(), items.begin() + begin[size_t(r)]);
  }
}

class LongHeadsRule final : public SelectionRule {
 public:
  LongHeadsRule(const MaskGeometry& g, const LongHeadsMask& m, const MaskInputs& in)
      : SelectionRule(g, m.chunk) {
    const int64_t w = m.chunk, d = in.q.shape[2], group = g.heads_q / g.heads_kv;
    const int64_t chunks = g.seqlen_k / w;  // complete chunks
    // mean(k) of every complete chunk and kv head: [chunks][Hkv][D]
    std::vector<float> kmean(size_t(chunks * g.heads_kv * d), 0.0f);
#pragma omp parallel for
    for (int64_t c = 0; c < chunks; ++c) {
      std::vector<float> row(static_cast<size_t>(d));
      for (int64_t hk = 0; hk < g.heads_kv; ++hk) {
        std::vector<double> acc(size_t(d), 0.0);
        for (int64_t j = c * w; j < (c + 1) * w; ++j) {
          load_vec(in.k, j, hk, row.data());
          for (int64_t x = 0; x < d; ++x) acc[size_t(x)] += row[size_t(x)];
        }
        for (int64_t x = 0; x < d; ++x) {
          kmean[size_t((c * g.heads_kv + hk) * d + x)] = float(acc[size_t(x)] / double(w));
        }
      }
    }
    std::vector<int64_t> begin, tails;
    build_rows(
        g.heads_q * g.seqlen_q,
        [&](int64_t r, std::vector<int64_t>& sel, int64_t& tail) {
          const int64_t h = r / g.seqlen_q, i = r % g.seqlen_q, hk = h / group;
          const int64_t n = pos(i) + 1;  // visible keys
          const int64_t complete = n > 0 ? n / w : 0;
          tail = complete * w;
          if (complete <= m.k - 1) {  // budget covers every chunk
            for (int64_t c = 0; c < complete; ++c) sel.push_back(c);
            return;
          }
          std::vector<float> q(static_cast<size_t>(d)), score(static_cast<size_t>(complete), 0.0f);
          load_vec(in.q, i, h, q.data());
          std::vector<int64_t> cand;
          for (int64_t c = 1; c + 1 < complete; ++c) {
            score[size_t(c)] = dot(q.data(), &kmean[size_t((c * g.heads_kv + hk) * d)], d);
            cand.push_back(c);
          }
          top_k(score, cand, m.k - 3, sel);
          sel.insert(sel.begin(), 0);
          sel.push_back(complete - 1);
        },
        items_, begin, tails);
    rows_.resize(size_t(g.heads_q * g.seqlen_q));
    for (size_t r = 0; r < rows_.size(); ++r) rows_[r] = {begin[r], begin[r + 1], tails[r]};
  }
  int64_t row_group(int64_t h) const override {
    return h;
  }

 protected:
  int64_t index(int64_t h, int64_t i) const override {
    return h * geometry_.seqlen_q + i;
  }
};

class DhsaRule final : public SelectionRule {
 public:
  DhsaRule(const MaskGeometry& g, const DhsaMask& m, const MaskInputs& in)
      : SelectionRule(g, m.chunk), chunk_(m.chunk) {
    const int64_t c = m.chunk, d = in.q.shape[2];
    const int64_t n_chunks = (g.seqlen_k + c - 1) / c, n_blocks = (g.seqlen_q + c - 1) / c;
    // Key chunk representation: sqrt(n_c) * mean over kv heads and the chunk's keys.
    std::vector<float> kbar(size_t(n_chunks * d));
    std::vector<float> qbar(size_t(n_blocks * d));
    auto mean_rows = [&](const TensorView& t, int64_t s0, int64_t s1, int64_t heads, float gain,
                         float* out) {
      std::vector<double> acc(size_t(d), 0.0);
      std::vector<float> row(static_cast<size_t>(d));
      for (int64_t s = s0; s < s1; ++s) {
        for (int64_t h = 0; h < heads; ++h) {
          load_vec(t, s, h, row.data());
          for (int64_t x = 0; x < d; ++x) acc[size_t(x)] += row[size_t(x)];
        }
      }
      const double n = double((s1 - s0) * heads);
      for (int64_t x = 0; x < d; ++x) out[x] = float(double(gain) * acc[size_t(x)] / n);
    };
#pragma omp parallel for
    for (int64_t k = 0; k < n_chunks; ++k) {
      const int64_t s1 = std::min(g.seqlen_k, (k + 1) * c);
      mean_rows(in.k, k * c, s1, g.heads_kv, std::sqrt(float(s1 - k * c)), &kbar[size_t(k * d)]);
    }
#pragma omp parallel for
    for (int64_t b = 0; b < n_blocks; ++b) {
      mean_rows(in.q, b * c, std::min(g.seqlen_q, (b + 1) * c), g.heads_q, 1.0f,
                &qbar[size_t(b * d)]);
    }
    std::vector<int64_t> begin, tails;
    build_rows(
        n_blocks,
        [&](int64_t b, std::vector<int64_t>& sel, int64_t& tail) {
          const int64_t e = pos(std::min(g.seqlen_q, (b + 1) * c) - 1);  // block's last key
          tail = std::max<int64_t>(0, e - m.recent + 1);
          if (e < 0) return;
          std::vector<float> score(size_t(n_chunks), 0.0f);
          std::vector<int64_t> cand;
          for (int64_t k = 1; k * c <= e && k * c < tail; ++k) {
            score[size_t(k)] = dot(&qbar[size_t(b * d)], &kbar[size_t(k * d)], d);
            cand.push_back(k);
          }
          top_k(score, cand, m.k, sel);
          if (tail > 0) sel.insert(sel.begin(), 0);
        },
        items_, begin, tails);
    rows_.resize(size_t(n_blocks));
    for (size_t r = 0; r < rows_.size(); ++r) rows_[r] = {begin[r], begin[r + 1], tails[r]};
  }

 protected:
  int64_t index(int64_t, int64_t i) const override {
    return i / chunk_;
  }

 private:
  int64_t chunk_;
};

class TopKRule final : public SelectionRule {
 public:
  TopKRule(const MaskGeometry& g, const TopKMask& m, const MaskInputs& in) : SelectionRule(g, 1) {
    const TensorView& s = m.scores.view;
    auto score_at = [&](int64_t hk, int64_t j) {
      const float* p = static_cast<const float*>(s.data);
      return s.rank == 2 ? p[hk * s.stride[0] + (in.k_start + j) * s.stride[1]]
                         : p[in.batch * s.stride[0] + hk * s.stride[1] + j * s.stride[2]];
    };
    std::vector<int64_t> begin, tails;
    build_rows(
        g.heads_kv * g.seqlen_q,
        [&](int64_t r, std::vector<int64_t>& sel, int64_t& tail) {
          const int64_t hk = r / g.seqlen_q, i = r % g.seqlen_q;
          const int64_t p = std::min(pos(i), g.seqlen_k - 1);
          const int64_t lo = std::max<int64_t>(0, p - m.window + 1);
          if (p + 1 - lo <= m.k) {  // the window fits the budget
            tail = lo;
            return;
          }
          tail = g.seqlen_k;  // no contiguous tail: every visible key is listed
          std::vector<float> score(size_t(p + 1), 0.0f);
          std::vector<int64_t> cand;
          for (int64_t j = lo; j <= p; ++j) {
            score[size_t(j)] = score_at(hk, j);
            cand.push_back(j);
          }
          top_k(score, cand, m.k, sel);
        },
        items_, begin, tails);
    rows_.resize(size_t(g.heads_kv * g.seqlen_q));
    for (size_t r = 0; r < rows_.size(); ++r) rows_[r] = {begin[r], begin[r + 1], tails[r]};
  }
  int64_t row_group(int64_t h) const override { return kv_head(h); }

 protected:
  int64_t index(int64_t h, int64_t i) const override { return kv_head(h) * geometry_.seqlen_q + i; }

 private:
  int64_t kv_head(int64_t h) const { return h / (geometry_.heads_q / geometry_.heads_kv); }
};

void check_inputs(const MaskInputs& in, const MaskGeometry& g, std::string_view name) {
  const TensorView& q = in.q;
  const TensorView& k = in.k;
  POLYHEAD_CHECK(q.rank == 3 && k.rank == 3 && q.shape[0] == g.seqlen_q &&
                     q.shape[1] == g.heads_q && k.shape[0] == g.seqlen_k &&
                     k.shape[1] == g.heads_kv && q.shape[2] == k.shape[2],
                 "mask ", name, ": inputs q ", q.describe(), " and k ", k.describe(),
                 " do not match the sequence [", g.seqlen_q, ", ", g.heads_q, ", D] / [",
                 g.seqlen_k, ", ", g.heads_kv, ", D]");
  POLYHEAD_CHECK(q.device.type == DeviceType::cpu && k.device.type == DeviceType::cpu, "mask ",
                 name, ": selection from q and k runs on the host here; tensors are on ",
                 to_string(q.device));
}

}  // namespace

void check_selection(const MaskSpec& spec, const MaskGeometry& g) {
  if (const auto* m = spec.get_if<LongHeadsMask>()) {
    POLYHEAD_CHECK(m->chunk >= 1, "mask longheads: chunk = ", m->chunk, " must be >= 1");
    POLYHEAD_CHECK(m->k >= 3, "mask longheads: k = ", m->k,
                   " must be >= 3 (first, last and at least one selected chunk)");
  } else if (const auto* d = spec.get_if<DhsaMask>()) {
    POLYHEAD_CHECK(d->chunk >= 1, "mask dhsa: chunk = ", d->chunk, " must be >= 1");
    POLYHEAD_CHECK(d->k >= 0, "mask dhsa: k = ", d->k, " must be >= 0");
    POLYHEAD_CHECK(d->recent >= 0, "mask dhsa: recent = ", d->recent, " must be >= 0");
  } else if (const auto* t = spec.get_if<TopKMask>()) {
    POLYHEAD_CHECK(t->k >= 1, "mask topk: k = ", t->k, " must be >= 1");
    POLYHEAD_CHECK(t->window >= 1, "mask topk: window = ", t->window, " must be >= 1");
    const TensorView& s = t->scores.view;
    POLYHEAD_CHECK(s.data != nullptr, "mask topk: scores are missing (scores=FILE.npy)");
    POLYHEAD_CHECK(s.dtype == DType::f32, "mask topk: scores dtype ", dtype_name(s.dtype),
                   " is not supported (f32)");
    POLYHEAD_CHECK(s.device.type == DeviceType::cpu, "mask topk: scores are on ",
                   to_string(s.device), "; they must be on the host");
    POLYHEAD_CHECK(s.rank == 2 || s.rank == 3, "mask topk: scores have rank ", s.rank,
                   "; expected [Hkv, Sk] or [B, Hkv, Sk]");
    POLYHEAD_CHECK(s.shape[s.rank - 2] == g.heads_kv, "mask topk: scores.shape[", s.rank - 2,
                   "] = ", s.shape[s.rank - 2], " must equal the kv heads ", g.heads_kv);
  }
}

std::shared_ptr<const MaskRule> make_longheads_rule(const LongHeadsMask& m, const MaskGeometry& g,
                                                    const MaskInputs& in) {
  check_inputs(in, g, "longheads");
  return std::make_shared<LongHeadsRule>(g, m, in);
}

std::shared_ptr<const MaskRule> make_dhsa_rule(const DhsaMask& m, const MaskGeometry& g,
                                               const MaskInputs& in) {
  check_inputs(in, g, "dhsa");
  return std::make_shared<DhsaRule>(g, m, in);
}

std::shared_ptr<const MaskRule> make_topk_rule(const TopKMask& m, const MaskGeometry& g,
                                               const MaskInputs& in) {
  const TensorView& s = m.scores.view;
  const int64_t keys = s.shape[s.rank - 1];
  if (s.rank == 2) {
    POLYHEAD_CHECK(in.k_start + g.seqlen_k <= keys, "mask topk: scores.shape[1] = ", keys,
                   " is shorter than the keys ", in.k_start + g.seqlen_k);
  } else {
    POLYHEAD_CHECK(in.batch < s.shape[0] && g.seqlen_k <= keys, "mask topk: scores ", s.describe(),
                   " do not cover batch ", in.batch, " with ", g.seqlen_k, " keys");
  }
  return std::make_shared<TopKRule>(g, m, in);
}

}  // namespace polyhead::detail
