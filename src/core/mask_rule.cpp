#include "core/mask_rule.h"

#include <algorithm>

#include "core/mask_policy.h"
#include "polyhead/error.h"

namespace polyhead::detail {

void MaskRule::allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const {
  for (int64_t t = 0; t < count; ++t) out[t] = allowed(head, i, j0 + t) ? 1 : 0;
}

void MaskRule::key_tiles(int64_t head, int64_t q_tile, TileShape tile,
                         std::vector<KeyTile>& out) const {
  out.clear();
  const int64_t i0 = q_tile * tile.m;
  const int64_t i1 = std::min(geometry_.seqlen_q, i0 + tile.m);
  const int64_t sk = geometry_.seqlen_k;
  std::vector<uint8_t> row(size_t(std::min(tile.n, sk)));
  for (int64_t j0 = 0, kt = 0; j0 < sk; j0 += tile.n, ++kt) {
    const int64_t n = std::min(tile.n, sk - j0);
    int64_t visible = 0;
    for (int64_t i = i0; i < i1; ++i) {
      allowed_row(head, i, j0, n, row.data());
      for (int64_t t = 0; t < n; ++t) visible += row[size_t(t)];
    }
    if (visible > 0) out.push_back({kt, visible == (i1 - i0) * n});
  }
}

int64_t MaskRule::row_pairs(int64_t head, int64_t i) const {
  const int64_t sk = geometry_.seqlen_k;
  std::vector<uint8_t> row(static_cast<size_t>(sk));
  allowed_row(head, i, 0, sk, row.data());
  int64_t visible = 0;
  for (uint8_t a : row) visible += a;
  return visible;
}

namespace {

class NoMaskRule final : public MaskRule {
 public:
  using MaskRule::MaskRule;
  bool allowed(int64_t, int64_t, int64_t) const override { return true; }
  void allowed_row(int64_t, int64_t, int64_t, int64_t count, uint8_t* out) const override {
    std::fill(out, out + count, uint8_t{1});
  }
  void key_tiles(int64_t, int64_t, TileShape tile, std::vector<KeyTile>& out) const override {
    out.clear();
    const int64_t k_tiles = (geometry_.seqlen_k + tile.n - 1) / tile.n;
    for (int64_t kt = 0; kt < k_tiles; ++kt) out.push_back({kt, true});
  }
  int64_t row_pairs(int64_t, int64_t) const override { return geometry_.seqlen_k; }
};

// The rows of a query tile cover one contiguous key range (WindowPolicy's ends move by at most
// one per row), and a key tile [k0, k1) is full exactly when lo(last row) <= k0 and
// hi(first row) >= k1.
class WindowRule final : public MaskRule {
 public:
  WindowRule(const MaskGeometry& g, const WindowMask& w)
      : MaskRule(g),
        pol_{w.left, w.right, w.align == Alignment::top_left ? 0 : g.seqlen_k - g.seqlen_q,
             g.seqlen_k} {}

  bool allowed(int64_t, int64_t i, int64_t j) const override { return pol_.allowed(i, j); }
  void allowed_row(int64_t, int64_t i, int64_t j0, int64_t count, uint8_t* out) const override {
    const int64_t a = std::clamp(pol_.lo(i) - j0, int64_t{0}, count);
    const int64_t b = std::clamp(pol_.hi(i) - j0, a, count);
    std::fill(out, out + a, uint8_t{0});
    std::fill(out + a, out + b, uint8_t{1});
    std::fill(out + b, out + count, uint8_t{0});
  }
  void key_tiles(int64_t, int64_t q_tile, TileShape tile,
                 std::vector<KeyTile>& out) const override {
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
  int64_t row_pairs(int64_t, int64_t i) const override {
    return std::max<int64_t>(0, pol_.hi(i) - pol_.lo(i));
  }

 private:
  WindowPolicy pol_;
};

}  // namespace

std::shared_ptr<const MaskRule> make_rule(const MaskSpec& spec, const MaskGeometry& g) {
  POLYHEAD_CHECK(g.seqlen_q >= 0 && g.seqlen_k >= 0, "mask geometry: seqlen_q = ", g.seqlen_q,
                 ", seqlen_k = ", g.seqlen_k, " must be >= 0");
  POLYHEAD_CHECK(g.heads_q >= 1 && g.heads_kv >= 1 && g.heads_q % g.heads_kv == 0,
                 "mask geometry: heads_q = ", g.heads_q, ", heads_kv = ", g.heads_kv,
                 " (both >= 1, heads_q % heads_kv == 0)");
  if (spec.is_none()) return std::make_shared<NoMaskRule>(g);
  if (const auto* w = spec.get_if<WindowMask>()) {
    POLYHEAD_CHECK(w->left >= -1, "mask window: left = ", w->left,
                   " must be >= -1 (-1: unbounded)");
    POLYHEAD_CHECK(w->right >= -1, "mask window: right = ", w->right,
                   " must be >= -1 (-1: unbounded)");
    return std::make_shared<WindowRule>(g, *w);
  }
  POLYHEAD_FAIL("mask '", spec.to_string(), "': no rule for this kind");
}

}  // namespace polyhead::detail
