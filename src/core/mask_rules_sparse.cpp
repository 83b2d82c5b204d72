// Static sparse mask kinds: neighborhood (NA/GNA), S2-Attention strides, user block masks and
// one spec per head (MoA).
#include <algorithm>
#include <vector>

#include "core/mask_policy.h"
#include "core/mask_rule.h"
#include "polyhead/error.h"

namespace polyhead::detail {
namespace {

class NeighborhoodRule final : public MaskRule {
 public:
  NeighborhoodRule(const MaskGeometry& g, const NeighborhoodMask& m)
      : MaskRule(g), pol_(neighborhood_policy(m)) {}
  bool allowed(int64_t, int64_t i, int64_t j) const override { return pol_.allowed(i, j); }

  void row_intervals(int64_t, int64_t i, std::vector<KeyInterval>& out) const override {
    out.clear();
    int64_t c[3], first[3], last[3];
    pol_.coords(i, c);
    for (int d = 0; d < pol_.rank; ++d) {
      if (pol_.dim[d].keys(c[d], &first[d], &last[d]) == 0) return;
    }
    // Walk the leading dimensions' coordinates in increasing order; the last dimension is one
    // interval (dilation 1) or single keys spaced by its dilation.
    const int r = pol_.rank;
    int64_t y[3] = {first[0], first[1], first[2]};
    while (true) {
      int64_t base = 0;
      for (int d = 0; d < r - 1; ++d) base = (base + y[d]) * pol_.dim[d + 1].len;
      const int64_t step = pol_.dim[r - 1].dilation;
      if (step == 1) {
        append_interval(out, base + first[r - 1], base + last[r - 1] + 1);
      } else {
        for (int64_t x = first[r - 1]; x <= last[r - 1]; x += step)
          append_interval(out, base + x, base + x + 1);
      }
      int d = r - 2;
      for (; d >= 0; --d) {
        y[d] += pol_.dim[d].dilation;
        if (y[d] <= last[d]) break;
        y[d] = first[d];
      }
      if (d < 0) break;
    }
  }

  int64_t row_pairs(int64_t, int64_t i) const override {
    int64_t c[3], n = 1;
    pol_.coords(i, c);
    for (int d = 0; d < pol_.rank; ++d) {
      int64_t f, l;
      n *= pol_.dim[d].keys(c[d], &f, &l);
    }
    return n;
  }

 private:
  NeighborhoodPolicy pol_;
};

class StridedRule final : public MaskRule {
 public:
  StridedRule(const MaskGeometry& g, const StridedMask& m) : MaskRule(g), homo_(m.homo_heads) {
    const int64_t step = std::max<int64_t>(1, m.vstride / g.heads_q);
    for (int64_t kv = 0; kv < g.heads_kv; ++kv) {
      const int64_t group = m.homo_heads ? 0 : kv;
      pol_.push_back({m.block, m.local, m.vstride, step, m.offset, g.seqlen_k - g.seqlen_q,
                      group >= g.heads_kv - m.dense_heads, group});
    }
  }
  bool allowed(int64_t h, int64_t i, int64_t j) const override {
    return pol_[size_t(kv_head(h))].allowed(i, j);
  }
  void row_intervals(int64_t h, int64_t i, std::vector<KeyInterval>& out) const override {
    out.clear();
    const StridedPolicy& p = pol_[size_t(kv_head(h))];
    const int64_t pos = i + p.pos_offset;
    if (pos < 0) return;
    const int64_t end = std::min(pos + 1, geometry_.seqlen_k);
    if (p.dense) return append_interval(out, 0, end);
    const int64_t local_lo = std::max<int64_t>(0, pos / p.block - p.local + 1);
    // Vertical blocks: kb = -(group * step + offset) mod vstride, then every vstride blocks.
    const int64_t shift = (p.group * p.step + p.offset) % p.vstride;
    for (int64_t kb = (p.vstride - shift) % p.vstride; kb < local_lo; kb += p.vstride) {
      append_interval(out, kb * p.block, (kb + 1) * p.block);
    }
    append_interval(out, local_lo * p.block, end);
  }
  int64_t row_group(int64_t h) const override { return homo_ ? 0 : kv_head(h); }

 private:
  int64_t kv_head(int64_t h) const { return h / (geometry_.heads_q / geometry_.heads_kv); }
  std::vector<StridedPolicy> pol_;
  bool homo_;
};

class BlockRule final : public MaskRule {
 public:
  BlockRule(const MaskGeometry& g, const BlockMask& m) : MaskRule(g), m_(m) {}
  bool allowed(int64_t h, int64_t i, int64_t j) const override {
    return bit(h, i / m_.block_q, j / m_.block_k);
  }
  void row_intervals(int64_t h, int64_t i, std::vector<KeyInterval>& out) const override {
    out.clear();
    const int64_t qb = i / m_.block_q, sk = geometry_.seqlen_k;
    for (int64_t kb = 0; kb * m_.block_k < sk; ++kb) {
      if (bit(h, qb, kb))
        append_interval(out, kb * m_.block_k, std::min(sk, (kb + 1) * m_.block_k));
    }
  }
  // A tile is visited when one of the blocks it overlaps is set and full when all are: one
  // read per (block, tile) pair instead of the generic walk over every row's intervals
  // (a [64, 128, 128] mask at 16k tokens, 64 heads: 107 -> 7-11 ms on a 2-core machine).
  void key_tiles(int64_t h, int64_t q_tile, TileShape tile,
                 std::vector<KeyTile>& out) const override {
    out.clear();
    const int64_t sk = geometry_.seqlen_k, i0 = q_tile * tile.m;
    const int64_t i1 = std::min(geometry_.seqlen_q, i0 + tile.m);
    if (i1 <= i0) return;
    const int64_t qb0 = i0 / m_.block_q, qb1 = (i1 - 1) / m_.block_q;
    for (int64_t kt = 0; kt * tile.n < sk; ++kt) {
      const int64_t kb0 = kt * tile.n / m_.block_k;
      const int64_t kb1 = (std::min(sk, (kt + 1) * tile.n) - 1) / m_.block_k;
      bool any = false, all = true;
      for (int64_t qb = qb0; qb <= qb1 && (all || !any); ++qb) {
        for (int64_t kb = kb0; kb <= kb1 && (all || !any); ++kb) {
          const bool b = bit(h, qb, kb);
          any = any || b;
          all = all && b;
        }
      }
      if (any) out.push_back({kt, all});
    }
  }
  // Only the blocks of [j0, j0 + count): the partial tiles' bitmasks (cuda) and the CPU
  // kernel's masked tiles ask for one tile's keys at a time.
  void allowed_row(int64_t h, int64_t i, int64_t j0, int64_t count, uint8_t* out) const override {
    const int64_t qb = i / m_.block_q;
    for (int64_t t = 0; t < count;) {
      const int64_t kb = (j0 + t) / m_.block_k;
      const int64_t run = std::min(count, (kb + 1) * m_.block_k - j0) - t;
      std::fill(out + t, out + t + run, uint8_t(bit(h, qb, kb) ? 1 : 0));
      t += run;
    }
  }
  int64_t row_group(int64_t h) const override { return m_.bits.view.shape[0] == 1 ? 0 : h; }

 private:
  bool bit(int64_t h, int64_t qb, int64_t kb) const {
    const TensorView& t = m_.bits.view;
    const int64_t hh = t.shape[0] == 1 ? 0 : h;
    return static_cast<const uint8_t*>(
               t.data)[hh * t.stride[0] + qb * t.stride[1] + kb * t.stride[2]] != 0;
  }
  BlockMask m_;
};

// Slices are bucketed by query tile of kBucket rows so a row only visits the slices that can
// hold it.
class SliceRule final : public MaskRule {
 public:
  SliceRule(const MaskGeometry& g, const SliceMask& m) : MaskRule(g), slices_(m.slices) {
    buckets_.resize(size_t((g.seqlen_q + kBucket - 1) / kBucket));
    for (size_t s = 0; s < slices_.size(); ++s) {
      const AttnSlice& a = slices_[s];
      if (a.q_begin >= a.q_end || a.k_begin >= a.k_end) continue;
      for (int64_t b = a.q_begin / kBucket; b * kBucket < a.q_end; ++b)
        buckets_[size_t(b)].push_back(s);
    }
  }
  bool allowed(int64_t, int64_t i, int64_t j) const override {
    for (size_t s : buckets_[size_t(i / kBucket)]) {
      int64_t lo, hi;
      if (range(slices_[s], i, &lo, &hi) && j >= lo && j < hi) return true;
    }
    return false;
  }
  void row_intervals(int64_t, int64_t i, std::vector<KeyInterval>& out) const override {
    out.clear();
    for (size_t s : buckets_[size_t(i / kBucket)]) {
      int64_t lo, hi;
      if (range(slices_[s], i, &lo, &hi)) out.push_back({lo, hi});
    }
    std::sort(out.begin(), out.end(), [](auto a, auto b) { return a.begin < b.begin; });
    size_t n = 0;
    for (const KeyInterval& r : out) {
      if (n > 0 && out[n - 1].end >= r.begin) {
        out[n - 1].end = std::max(out[n - 1].end, r.end);
      } else {
        out[n++] = r;
      }
    }
    out.resize(n);
  }

 private:
  static constexpr int64_t kBucket = 64;
  // Keys [lo, hi) of slice `a` visible from row i; false when none.
  static bool range(const AttnSlice& a, int64_t i, int64_t* lo, int64_t* hi) {
    if (i < a.q_begin || i >= a.q_end) return false;
    *lo = a.k_begin;
    *hi = a.k_end;
    if (a.type == SliceType::causal || a.type == SliceType::bi_causal) {
      *hi = std::min(*hi, i + a.k_end - a.q_end + 1);
    }
    if (a.type == SliceType::inv_causal || a.type == SliceType::bi_causal) {
      *lo = std::max(*lo, i + a.k_begin - a.q_begin);
    }
    return *lo < *hi;
  }
  std::vector<AttnSlice> slices_;
  std::vector<std::vector<size_t>> buckets_;
};

class PerHeadRule final : public MaskRule {
 public:
  PerHeadRule(const MaskGeometry& g, std::vector<std::shared_ptr<const MaskRule>> heads)
      : MaskRule(g), heads_(std::move(heads)) {}
  bool allowed(int64_t h, int64_t i, int64_t j) const override {
    return heads_[size_t(h)]->allowed(h, i, j);
  }
  void row_intervals(int64_t h, int64_t i, std::vector<KeyInterval>& out) const override {
    heads_[size_t(h)]->row_intervals(h, i, out);
  }
  void allowed_row(int64_t h, int64_t i, int64_t j0, int64_t count, uint8_t* out) const override {
    heads_[size_t(h)]->allowed_row(h, i, j0, count, out);
  }
  void key_tiles(int64_t h, int64_t q_tile, TileShape tile,
                 std::vector<KeyTile>& out) const override {
    heads_[size_t(h)]->key_tiles(h, q_tile, tile, out);
  }
  int64_t row_pairs(int64_t h, int64_t i) const override {
    return heads_[size_t(h)]->row_pairs(h, i);
  }
  int64_t row_group(int64_t h) const override { return h; }

 private:
  std::vector<std::shared_ptr<const MaskRule>> heads_;
};

}  // namespace

NeighborhoodPolicy neighborhood_policy(const NeighborhoodMask& m) {
  NeighborhoodPolicy pol;
  pol.rank = m.rank;
  for (int d = 0; d < m.rank; ++d) {
    pol.dim[d] = {m.grid[size_t(d)], m.kernel[size_t(d)], m.dilation[size_t(d)],
                  m.stride[size_t(d)], m.causal[size_t(d)]};
  }
  return pol;
}

void check_neighborhood(const NeighborhoodMask& m, const MaskGeometry& g) {
  POLYHEAD_CHECK(m.rank >= 1 && m.rank <= 3, "mask na: rank = ", m.rank, " must be 1, 2 or 3");
  int64_t tokens = 1;
  for (int d = 0; d < m.rank; ++d) {
    const size_t u = size_t(d);
    POLYHEAD_CHECK(m.grid[u] >= 1, "mask na: grid[", d, "] = ", m.grid[u], " must be >= 1");
    POLYHEAD_CHECK(m.kernel[u] >= 1, "mask na: kernel[", d, "] = ", m.kernel[u], " must be >= 1");
    POLYHEAD_CHECK(m.dilation[u] >= 1, "mask na: dilation[", d, "] = ", m.dilation[u],
                   " must be >= 1");
    POLYHEAD_CHECK(m.stride[u] >= 1 && m.stride[u] <= m.kernel[u], "mask na: stride[", d,
                   "] = ", m.stride[u], " must be in [1, kernel = ", m.kernel[u], "]");
    POLYHEAD_CHECK(m.kernel[u] * m.dilation[u] <= m.grid[u], "mask na: kernel[", d, "] * dilation[",
                   d, "] = ", m.kernel[u] * m.dilation[u], " exceeds grid[", d, "] = ", m.grid[u]);
    tokens *= m.grid[u];
  }
  POLYHEAD_CHECK(g.seqlen_q == tokens && g.seqlen_k == tokens, "mask na: the grid has ", tokens,
                 " tokens but Sq = ", g.seqlen_q, " and Sk = ", g.seqlen_k,
                 " (both must equal prod(grid))");
}

void check_strided(const StridedMask& m, const MaskGeometry& g) {
  POLYHEAD_CHECK(m.block >= 1, "mask s2: block = ", m.block, " must be >= 1");
  POLYHEAD_CHECK(m.local >= 1, "mask s2: local = ", m.local, " must be >= 1");
  POLYHEAD_CHECK(m.vstride >= 1, "mask s2: vstride = ", m.vstride, " must be >= 1");
  POLYHEAD_CHECK(m.offset >= 0, "mask s2: offset = ", m.offset, " must be >= 0");
  POLYHEAD_CHECK(m.dense_heads >= 0 && m.dense_heads <= g.heads_kv,
                 "mask s2: dense_heads = ", m.dense_heads,
                 " must be in [0, kv heads = ", g.heads_kv, "]");
}

void check_block(const BlockMask& m, const MaskGeometry& g) {
  const TensorView& t = m.bits.view;
  POLYHEAD_CHECK(m.block_q >= 1 && m.block_k >= 1, "mask blocks: bq = ", m.block_q,
                 ", bk = ", m.block_k, " must be >= 1");
  POLYHEAD_CHECK(t.rank == 3, "mask blocks: the block mask has rank ", t.rank,
                 "; expected [H or 1, ceil(Sq/bq), ceil(Sk/bk)]");
  POLYHEAD_CHECK(t.dtype == DType::u8, "mask blocks: dtype ", dtype_name(t.dtype),
                 " is not supported (u8 or bool)");
  POLYHEAD_CHECK(t.data != nullptr, "mask blocks: null data pointer");
  POLYHEAD_CHECK(t.device.type == DeviceType::cpu, "mask blocks: the block mask is on ",
                 to_string(t.device), "; it must be on the host");
  POLYHEAD_CHECK(t.shape[0] == 1 || t.shape[0] == g.heads_q, "mask blocks: shape[0] = ", t.shape[0],
                 " must be 1 or the q heads ", g.heads_q);
  const int64_t qb = (g.seqlen_q + m.block_q - 1) / m.block_q;
  const int64_t kb = (g.seqlen_k + m.block_k - 1) / m.block_k;
  POLYHEAD_CHECK(t.shape[1] >= qb, "mask blocks: shape[1] = ", t.shape[1],
                 " query blocks, need ceil(Sq / bq) = ceil(", g.seqlen_q, " / ", m.block_q,
                 ") = ", qb);
  POLYHEAD_CHECK(t.shape[2] >= kb, "mask blocks: shape[2] = ", t.shape[2],
                 " key blocks, need ceil(Sk / bk) = ceil(", g.seqlen_k, " / ", m.block_k,
                 ") = ", kb);
}

std::shared_ptr<const MaskRule> make_neighborhood_rule(const NeighborhoodMask& m,
                                                       const MaskGeometry& g) {
  return std::make_shared<NeighborhoodRule>(g, m);
}
std::shared_ptr<const MaskRule> make_strided_rule(const StridedMask& m, const MaskGeometry& g) {
  return std::make_shared<StridedRule>(g, m);
}
std::shared_ptr<const MaskRule> make_block_rule(const BlockMask& m, const MaskGeometry& g) {
  return std::make_shared<BlockRule>(g, m);
}
void check_slices(const SliceMask& m, const MaskGeometry& g) {
  for (size_t s = 0; s < m.slices.size(); ++s) {
    const AttnSlice& a = m.slices[s];
    POLYHEAD_CHECK(a.q_begin >= 0 && a.q_begin <= a.q_end && a.q_end <= g.seqlen_q,
                   "mask slices: slice ", s, " queries [", a.q_begin, ", ", a.q_end,
                   ") must lie in [0, Sq = ", g.seqlen_q, "]");
    POLYHEAD_CHECK(a.k_begin >= 0 && a.k_begin <= a.k_end && a.k_end <= g.seqlen_k,
                   "mask slices: slice ", s, " keys [", a.k_begin, ", ", a.k_end,
                   ") must lie in [0, Sk = ", g.seqlen_k, "]");
  }
}

std::shared_ptr<const MaskRule> make_slice_rule(const SliceMask& m, const MaskGeometry& g) {
  return std::make_shared<SliceRule>(g, m);
}

std::shared_ptr<const MaskRule> make_per_head_rule(const PerHeadMask& m, const MaskGeometry& g) {
  std::vector<std::shared_ptr<const MaskRule>> heads;
  for (const MaskSpec& sub : m.heads) heads.push_back(make_rule(sub, g));
  return std::make_shared<PerHeadRule>(g, std::move(heads));
}

}  // namespace polyhead::detail
