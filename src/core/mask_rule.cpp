#include "core/mask_rule.h"

#include <algorithm>

#include "core/mask_policy.h"
#include "polyhead/error.h"

namespace polyhead::detail {

void MaskRule::allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const {
  thread_local std::vector<KeyInterval> iv;
  row_intervals(head, i, iv);
  std::fill(out, out + count, uint8_t{0});
  for (const KeyInterval& r : iv) {
    const int64_t b = std::max(r.begin, j0), e = std::min(r.end, j0 + count);
    if (b < e) std::fill(out + (b - j0), out + (e - j0), uint8_t{1});
  }
}

void MaskRule::key_tiles(int64_t head, int64_t q_tile, TileShape tile,
                         std::vector<KeyTile>& out) const {
  out.clear();
  const int64_t sk = geometry_.seqlen_k;
  const int64_t i0 = q_tile * tile.m;
  const int64_t i1 = std::min(geometry_.seqlen_q, i0 + tile.m);
  const int64_t k_tiles = (sk + tile.n - 1) / tile.n;
  thread_local std::vector<int64_t> visible;  // visible pairs per key tile
  thread_local std::vector<KeyInterval> iv;
  visible.assign(size_t(k_tiles), 0);
  for (int64_t i = i0; i < i1; ++i) {
    row_intervals(head, i, iv);
    for (const KeyInterval& r : iv) {
      for (int64_t kt = r.begin / tile.n; kt * tile.n < r.end; ++kt) {
        visible[size_t(kt)] += std::min(r.end, (kt + 1) * tile.n) - std::max(r.begin, kt * tile.n);
      }
    }
  }
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    if (visible[size_t(kt)] == 0) continue;
    const int64_t cols = std::min(tile.n, sk - kt * tile.n);
    out.push_back({kt, visible[size_t(kt)] == (i1 - i0) * cols});
  }
}

int64_t MaskRule::row_pairs(int64_t head, int64_t i) const {
  thread_local std::vector<KeyInterval> iv;
  row_intervals(head, i, iv);
  int64_t n = 0;
  for (const KeyInterval& r : iv) n += r.end - r.begin;
  return n;
}

std::vector<MaskRule::RowGroup> MaskRule::row_groups() const {
  std::vector<RowGroup> groups;
  std::vector<int64_t> ids;
  for (int64_t h = 0; h < geometry_.heads_q; ++h) {
    const int64_t id = row_group(h);
    const auto it = std::find(ids.begin(), ids.end(), id);
    if (it == ids.end()) {
      ids.push_back(id);
      groups.push_back({h, 1});
    } else {
      ++groups[size_t(it - ids.begin())].heads;
    }
  }
  return groups;
}

int64_t MaskRule::pair_count() const {
  int64_t total = 0;
  for (const RowGroup& g : row_groups()) {
    int64_t n = 0;
    for (int64_t i = 0; i < geometry_.seqlen_q; ++i) n += row_pairs(g.first_head, i);
    total += g.heads * n;
  }
  return total;
}

namespace {

class NoMaskRule final : public MaskRule {
 public:
  using MaskRule::MaskRule;
  bool allowed(int64_t, int64_t, int64_t) const override { return true; }
  void row_intervals(int64_t, int64_t, std::vector<KeyInterval>& out) const override {
    out.clear();
    if (geometry_.seqlen_k > 0) out.push_back({0, geometry_.seqlen_k});
  }
  void allowed_row(int64_t, int64_t, int64_t, int64_t count, uint8_t* out) const override {
    std::fill(out, out + count, uint8_t{1});
  }
  void key_tiles(int64_t, int64_t, TileShape tile, std::vector<KeyTile>& out) const override {
    out.clear();
    const int64_t k_tiles = (geometry_.seqlen_k + tile.n - 1) / tile.n;
    for (int64_t kt = 0; kt < k_tiles; ++kt) out.push_back({kt, true});
  }
  int64_t row_pairs(int64_t, int64_t) const override { return geometry_.seqlen_k; }
  bool stored() const override { return false; }
};

// Without sink tokens the rows of a query tile cover one contiguous key range (WindowPolicy's
// ends move by at most one per row), and a key tile [k0, k1) is full exactly when
// lo(last row) <= k0 and hi(first row) >= k1. Sink tokens add the interval [0, sink).
class WindowRule final : public MaskRule {
 public:
  WindowRule(const MaskGeometry& g, const WindowMask& w)
      : MaskRule(g),
        pol_{w.left, w.right, w.align == Alignment::top_left ? 0 : g.seqlen_k - g.seqlen_q,
             g.seqlen_k},
        sink_(std::min(w.sink, g.seqlen_k)) {}

  bool allowed(int64_t, int64_t i, int64_t j) const override {
    return pol_.allowed(i, j) || (j < sink_ && j < pol_.hi(i));
  }
  void row_intervals(int64_t, int64_t i, std::vector<KeyInterval>& out) const override {
    out.clear();
    const int64_t lo = pol_.lo(i), hi = pol_.hi(i);
    const int64_t sink_end = std::min(sink_, hi);  // sinks obey the right bound
    if (lo >= hi) {
      if (sink_end > 0) out.push_back({0, sink_end});
    } else if (sink_end >= lo) {
      out.push_back({0, hi});  // the sinks touch or overlap the window
    } else {
      if (sink_end > 0) out.push_back({0, sink_end});
      out.push_back({lo, hi});
    }
  }
  void allowed_row(int64_t h, int64_t i, int64_t j0, int64_t count, uint8_t* out) const override {
    if (sink_ > 0) return MaskRule::allowed_row(h, i, j0, count, out);
    const int64_t a = std::clamp(pol_.lo(i) - j0, int64_t{0}, count);
    const int64_t b = std::clamp(pol_.hi(i) - j0, a, count);
    std::fill(out, out + a, uint8_t{0});
    std::fill(out + a, out + b, uint8_t{1});
    std::fill(out + b, out + count, uint8_t{0});
  }
  void key_tiles(int64_t h, int64_t q_tile, TileShape tile,
                 std::vector<KeyTile>& out) const override {
    if (sink_ > 0) return MaskRule::key_tiles(h, q_tile, tile, out);
    out.clear();
    const int64_t i0 = q_tile * tile.m;
    const int64_t i1 = std::min(geometry_.seqlen_q, i0 + tile.m);
    int64_t u_lo = geometry_.seqlen_k, u_hi = 0;
    for (int64_t i = i0; i < i1; ++i) {
      if (pol_.lo(i) < pol_.hi(i)) {
        u_lo = std::min(u_lo, pol_.lo(i));
        u_hi = std::max(u_hi, pol_.hi(i));
      }
    }
    if (u_lo >= u_hi) return;
    const int64_t max_lo = pol_.lo(i1 - 1), min_hi = pol_.hi(i0);
    for (int64_t kt = u_lo / tile.n; kt * tile.n < u_hi; ++kt) {
      const int64_t k0 = kt * tile.n, k1 = std::min(geometry_.seqlen_k, k0 + tile.n);
      out.push_back({kt, max_lo <= k0 && min_hi >= k1});
    }
  }
  int64_t row_pairs(int64_t h, int64_t i) const override {
    if (sink_ > 0) return MaskRule::row_pairs(h, i);
    return std::max<int64_t>(0, pol_.hi(i) - pol_.lo(i));
  }
  bool stored() const override { return sink_ > 0; }

 private:
  WindowPolicy pol_;
  int64_t sink_;
};

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

void check_window(const WindowMask& w) {
  POLYHEAD_CHECK(w.left >= -1, "mask window: left = ", w.left, " must be >= -1 (-1: unbounded)");
  POLYHEAD_CHECK(w.right >= -1, "mask window: right = ", w.right, " must be >= -1 (-1: unbounded)");
  POLYHEAD_CHECK(w.sink >= 0, "mask window: sink = ", w.sink, " must be >= 0");
}

}  // namespace

void check_mask(const MaskSpec& spec, const MaskGeometry& g) {
  POLYHEAD_CHECK(g.seqlen_q >= 0 && g.seqlen_k >= 0, "mask geometry: seqlen_q = ", g.seqlen_q,
                 ", seqlen_k = ", g.seqlen_k, " must be >= 0");
  POLYHEAD_CHECK(g.heads_q >= 1 && g.heads_kv >= 1 && g.heads_q % g.heads_kv == 0,
                 "mask geometry: heads_q = ", g.heads_q, ", heads_kv = ", g.heads_kv,
                 " (both >= 1, heads_q % heads_kv == 0)");
  std::visit(Overloaded{
                 [](const NoMask&) {},
                 [](const WindowMask& w) { check_window(w); },
                 [&](const NeighborhoodMask& m) { check_neighborhood(m, g); },
                 [&](const StridedMask& m) { check_strided(m, g); },
                 [&](const BlockMask& m) { check_block(m, g); },
                 [&](const SliceMask& m) { check_slices(m, g); },
                 [&](const PerHeadMask& m) {
                   POLYHEAD_CHECK(int64_t(m.heads.size()) == g.heads_q, "mask heads: has ",
                                  m.heads.size(), " specs but q has ", g.heads_q,
                                  " heads (one spec per query head)");
                   for (const MaskSpec& sub : m.heads) {
                     POLYHEAD_CHECK(!sub.get_if<PerHeadMask>() && !sub.is_dynamic(),
                                    "mask heads: spec '", sub.to_string(),
                                    "' cannot be nested (per-head specs are static kinds: none, "
                                    "causal, window, na, s2, blocks, slices)");
                     check_mask(sub, g);
                   }
                 },
                 [&](const LongHeadsMask&) { check_selection(spec, g); },
                 [&](const DhsaMask&) { check_selection(spec, g); },
                 [&](const TopKMask&) { check_selection(spec, g); },
             },
             spec.kind());
}

std::shared_ptr<const MaskRule> make_rule(const MaskSpec& spec, const MaskGeometry& g,
                                          const MaskInputs* inputs) {
  check_mask(spec, g);
  if (spec.is_dynamic()) {
    POLYHEAD_CHECK(inputs != nullptr, "mask '", spec.to_string(),
                   "' selects keys from q and k; compile it with the problem's tensors");
  }
  return std::visit(Overloaded{
                        [&](const NoMask&) -> std::shared_ptr<const MaskRule> {
                          return std::make_shared<NoMaskRule>(g);
                        },
                        [&](const WindowMask& w) -> std::shared_ptr<const MaskRule> {
                          return std::make_shared<WindowRule>(g, w);
                        },
                        [&](const NeighborhoodMask& m) { return make_neighborhood_rule(m, g); },
                        [&](const StridedMask& m) { return make_strided_rule(m, g); },
                        [&](const BlockMask& m) { return make_block_rule(m, g); },
                        [&](const SliceMask& m) { return make_slice_rule(m, g); },
                        [&](const PerHeadMask& m) { return make_per_head_rule(m, g); },
                        [&](const LongHeadsMask& m) { return make_longheads_rule(m, g, *inputs); },
                        [&](const DhsaMask& m) { return make_dhsa_rule(m, g, *inputs); },
                        [&](const TopKMask& m) { return make_topk_rule(m, g, *inputs); },
                    },
                    spec.kind());
}

}  // namespace polyhead::detail
