#include "cuda/fwd/patch_map.h"

#include <algorithm>
#include <array>
#include <vector>

#include "core/mask_rule.h"
#include "polyhead/error.h"

namespace polyhead::cuda {
namespace {

// The mask's dimensions padded to three with leading ones.
struct Dims3 {
  std::array<int64_t, 3> grid{1, 1, 1}, reach{1, 1, 1};  // reach: kernel * dilation
  std::array<bool, 3> causal{false, false, false};
};

Dims3 dims3(const NeighborhoodMask& m) {
  Dims3 d;
  const int lead = 3 - m.rank;
  for (int i = 0; i < m.rank; ++i) {
    d.grid[size_t(lead + i)] = m.grid[size_t(i)];
    d.reach[size_t(lead + i)] = m.kernel[size_t(i)] * m.dilation[size_t(i)];
    d.causal[size_t(lead + i)] = m.causal[size_t(i)];
  }
  return d;
}

// Key blocks of extent `key` (aligned) that the neighborhoods of `query` aligned positions
// reach along one dimension, away from the borders: keys [x0 - left, x0 + query - 1 + right].
int64_t blocks_reached(int64_t grid, int64_t query, int64_t key, int64_t reach, bool causal) {
  const int64_t left = causal ? reach - 1 : reach / 2, right = causal ? 0 : reach / 2;
  const int64_t n = (query - 1 + right) / key + (left + key - 1) / key + 1;
  return std::min(n, grid / key);
}

}  // namespace

std::optional<TokenOrder> choose_patch_order(const AttentionProblem& p, const ProblemShape& s,
                                             TileShape tile) {
  const auto* m = p.mask.get_if<NeighborhoodMask>();
  if (m == nullptr || m->rank < 2 || s.varlen || p.alibi_slopes ||
      (tile.m != 64 && tile.m != 128) || (tile.n != 64 && tile.n != 128)) {
    return std::nullopt;
  }
  const Dims3 d = dims3(*m);
  // Patches 2^a x 2^b x 2^c of 128 tokens (a = 0 for rank 2) dividing the grid; for 64-key
  // tiles, each split into two sub-patches along one of its dimensions. Cost: the key tiles an
  // interior patch's neighborhoods reach, then the keys in their bounding box.
  std::optional<TokenOrder> best;
  int64_t best_tiles = 0;
  double best_box = 0;
  for (int a = 0; a <= 7; ++a) {
    for (int b = 0; a + b <= 7; ++b) {
      const std::array<int, 3> sh{a, b, 7 - a - b};
      bool fits = true;
      double box = 1;
      for (size_t i = 0; i < 3; ++i) {
        const int64_t patch = int64_t(1) << sh[i];
        fits = fits && d.grid[i] % patch == 0;
        box *= double(patch + d.reach[i] - 1);
      }
      if (!fits) continue;
      for (int split = tile.n == 128 ? -1 : 0; split < (tile.n == 128 ? 0 : 3); ++split) {
        if (split >= 0 && sh[size_t(split)] == 0) continue;
        std::array<int, 3> inner = sh;
        if (split >= 0) --inner[size_t(split)];
        int64_t tiles = 1;
        for (size_t i = 0; i < 3; ++i) {
          tiles *= blocks_reached(d.grid[i], int64_t(1) << sh[i], int64_t(1) << inner[i],
                                  d.reach[i], d.causal[i]);
        }
        if (best && (tiles > best_tiles || (tiles == best_tiles && box >= best_box))) continue;
        TokenOrder o;
        o.patched = 1;
        o.patch_bits = 7;
        o.sub_bits = split >= 0 ? 6 : 7;
        o.sub_dim = split >= 0 ? split : 2;
        for (size_t i = 0; i < 3; ++i) {
          o.grid[i] = int32_t(d.grid[i]);
          o.shift[i] = sh[i];
          o.inner[i] = inner[i];
          o.patches[i] = int32_t(d.grid[i] >> sh[i]);
        }
        o.div_p2 = FastDiv(uint32_t(o.patches[2]));
        o.div_p12 = FastDiv(uint32_t(o.patches[1] * o.patches[2]));
        best = o;
        best_tiles = tiles;
        best_box = box;
      }
    }
  }
  return best;
}

HostBlockMap build_patch_block_map(const AttentionProblem& p, const ProblemShape& s,
                                   const TokenOrder& order, TileShape tile) {
  const auto* m = p.mask.get_if<NeighborhoodMask>();
  POLYHEAD_CHECK(m != nullptr && (tile.m == 64 || tile.m == 128) && (tile.n == 64 || tile.n == 128),
                 "cuda backend: the patch-order block map needs a neighborhood mask and 64- or "
                 "128-row tiles of 64 or 128 keys");
  const detail::NeighborhoodPolicy pol = detail::neighborhood_policy(*m);
  const int lead = 3 - m->rank;
  const int64_t tokens = s.seqlen_q, patches = tokens >> order.patch_bits;
  // Each 128-position patch is 128 / tile.m query tiles (rows of the map) and 128 / tile.n key
  // tiles.
  const int64_t words = tile.n / 32, halves = 128 / tile.n, q_parts = 128 / tile.m;

  // Grid coordinates of every position of one patch relative to its corner, and of a patch's
  // corner (the order's own arithmetic, as the kernels use it).
  std::vector<std::array<int64_t, 3>> within(128);
  for (int32_t w = 0; w < 128; ++w) {
    int32_t c[3];
    order.within_coords(w, c);
    within[size_t(w)] = {c[0], c[1], c[2]};
  }
  auto corner = [&](int64_t patch) {
    int32_t c[3];
    order.patch_corner(int32_t(patch), c);
    return std::array<int64_t, 3>{c[0], c[1], c[2]};
  };

  HostBlockMap out;
  out.row_ptr.push_back(0);
  std::vector<int64_t> lo(3), hi(3);
  for (int64_t qt = 0; qt < patches * q_parts; ++qt) {
    const int64_t q = qt / q_parts, r0 = (qt % q_parts) * tile.m;  // patch, its first row
    const std::array<int64_t, 3> qc = corner(q);
    // Key coordinates the patch's queries can reach, per padded dimension.
    for (size_t i = 0; i < 3; ++i) {
      if (int(i) < lead) {
        lo[i] = hi[i] = 0;
        continue;
      }
      const detail::NeighborhoodDim& dim = pol.dim[int(i) - lead];
      lo[i] = dim.len;
      hi[i] = -1;
      for (int64_t x = qc[i]; x < qc[i] + (int64_t(1) << order.shift[i]); ++x) {
        int64_t f, l;
        if (dim.keys(x, &f, &l) == 0) continue;
        lo[i] = std::min(lo[i], f);
        hi[i] = std::max(hi[i], l);
      }
    }
    bool empty = false;
    for (size_t i = 0; i < 3; ++i) empty = empty || hi[i] < lo[i];
    if (!empty) {
      // Per dimension, which reachable key coordinate each of the patch's query coordinates
      // sees: a pair is visible when all three dimensions say so.
      std::array<std::vector<uint8_t>, 3> seen;
      std::array<int64_t, 3> span{};
      for (size_t i = 0; i < 3; ++i) {
        span[i] = hi[i] - lo[i] + 1;
        const int64_t extent = int64_t(1) << order.shift[i];
        seen[i].assign(size_t(extent * span[i]), 1);
        if (int(i) < lead) continue;
        const detail::NeighborhoodDim& dim = pol.dim[int(i) - lead];
        for (int64_t x = 0; x < extent; ++x) {
          for (int64_t y = 0; y < span[i]; ++y) {
            seen[i][size_t(x * span[i] + y)] = dim.allowed(qc[i] + x, lo[i] + y) ? 1 : 0;
          }
        }
      }
      auto visible_pair = [&](const std::array<int64_t, 3>& wq, const std::array<int64_t, 3>& y) {
        for (size_t i = 0; i < 3; ++i) {
          const int64_t yy = y[i] - lo[i];
          if (yy < 0 || yy >= span[i] || !seen[i][size_t(wq[i] * span[i] + yy)]) return false;
        }
        return true;
      };
      // Candidate key patches in ascending patch (= position) order.
      const int64_t k0lo = lo[0] >> order.shift[0], k0hi = hi[0] >> order.shift[0];
      const int64_t k1lo = lo[1] >> order.shift[1], k1hi = hi[1] >> order.shift[1];
      const int64_t k2lo = lo[2] >> order.shift[2], k2hi = hi[2] >> order.shift[2];
      std::vector<uint32_t> bits(size_t(tile.m * words));
      for (int64_t a = k0lo; a <= k0hi; ++a) {
        for (int64_t b = k1lo; b <= k1hi; ++b) {
          for (int64_t c = k2lo; c <= k2hi; ++c) {
            const int64_t kp = (a * order.patches[1] + b) * order.patches[2] + c;
            const std::array<int64_t, 3> kc = corner(kp);
            for (int64_t half = 0; half < halves; ++half) {
              std::fill(bits.begin(), bits.end(), 0u);
              int64_t visible = 0;
              for (int64_t r = 0; r < tile.m; ++r) {
                for (int64_t k = 0; k < tile.n; ++k) {
                  const auto& wk = within[size_t(half * tile.n + k)];
                  if (visible_pair(within[size_t(r0 + r)],
                                   {kc[0] + wk[0], kc[1] + wk[1], kc[2] + wk[2]})) {
                    bits[size_t(r * words + k / 32)] |= 1u << (k % 32);
                    ++visible;
                  }
                }
              }
              if (visible == 0) continue;
              out.tiles.push_back(int32_t(kp * halves + half));
              if (visible == tile.m * tile.n) {
                out.tiles.push_back(-1);
              } else {
                out.tiles.push_back(int32_t(out.bits.size() / size_t(tile.m * words)));
                out.bits.insert(out.bits.end(), bits.begin(), bits.end());
              }
            }
          }
        }
      }
    }
    POLYHEAD_CHECK(out.tiles.size() / 2 < size_t(INT32_MAX), "cuda backend: the patch-order ",
                   "block map has more than int32 entries");
    out.row_ptr.push_back(int32_t(out.tiles.size() / 2));
  }
  out.row_start.assign(size_t(s.batch * s.heads_q), 0);
  return out;
}

}  // namespace polyhead::cuda
