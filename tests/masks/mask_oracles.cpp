#include "masks/mask_oracles.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

namespace polyhead::masktest {

bool na_1d(int64_t x, int64_t y, int64_t len, int64_t kernel, int64_t dilation, int64_t stride,
           bool causal) {
  if (x % dilation != y % dilation) return false;
  const int64_t xq = x / dilation, yq = y / dilation, g = x % dilation;
  const int64_t lg = len / dilation + (g < len % dilation ? 1 : 0);
  const int64_t left = kernel / 2, right = kernel / 2 + kernel % 2 - 1;
  if (!causal) {
    const int64_t leader = std::min((xq / stride) * stride + stride / 2, lg - 1);
    const int64_t c = std::clamp(leader, left, lg - 1 - right);
    return c - left <= yq && yq <= c + right;
  }
  const int64_t leader = std::min((xq / stride) * stride + stride - 1, lg - 1);
  return yq <= xq && leader - yq < kernel;
}

bool na_allowed(const NeighborhoodMask& m, int64_t i, int64_t j) {
  for (int d = m.rank - 1; d >= 0; --d) {
    const size_t u = size_t(d);
    if (!na_1d(i % m.grid[u], j % m.grid[u], m.grid[u], m.kernel[u], m.dilation[u], m.stride[u],
               m.causal[u])) {
      return false;
    }
    i /= m.grid[u];
    j /= m.grid[u];
  }
  return true;
}

bool s2_allowed(const StridedMask& m, int64_t heads_q, int64_t heads_kv, int64_t h, int64_t i,
                int64_t j) {
  if (j > i) return false;
  const int64_t kv = h / (heads_q / heads_kv);
  const int64_t g = m.homo_heads ? 0 : kv;
  const int64_t step = std::max<int64_t>(1, m.vstride / heads_q);
  const int64_t qb = i / m.block, kb = j / m.block;
  if (qb - kb < m.local) return true;
  if (g >= heads_kv - m.dense_heads) return true;
  return (kb + g * step + m.offset) % m.vstride == 0;
}

std::vector<uint8_t> dense_mask(const BlockMap& map) {
  const MaskGeometry& g = map.geometry();
  std::vector<uint8_t> out(size_t(g.heads_q * g.seqlen_q * g.seqlen_k));
  for (int64_t h = 0; h < g.heads_q; ++h) {
    for (int64_t i = 0; i < g.seqlen_q; ++i) {
      for (int64_t j = 0; j < g.seqlen_k; ++j) {
        out[size_t((h * g.seqlen_q + i) * g.seqlen_k + j)] = map.allowed(h, i, j) ? 1 : 0;
      }
    }
  }
  return out;
}

std::string check_block_map(const BlockMap& map) {
  const MaskGeometry& g = map.geometry();
  const TileShape t = map.tile();
  const std::vector<uint8_t> dense = dense_mask(map);
  auto at = [&](int64_t h, int64_t i, int64_t j) {
    return dense[size_t((h * g.seqlen_q + i) * g.seqlen_k + j)] != 0;
  };
  std::ostringstream err;
  int64_t pairs = 0, visited = 0, full = 0;
  std::vector<KeyTile> row;
  std::vector<uint8_t> buf(size_t(g.seqlen_k) + 1);
  for (int64_t h = 0; h < g.heads_q; ++h) {
    for (int64_t i = 0; i < g.seqlen_q; ++i) {
      map.allowed_row(h, i, 0, g.seqlen_k, buf.data());
      for (int64_t j = 0; j < g.seqlen_k; ++j) {
        if ((buf[size_t(j)] != 0) != at(h, i, j)) {
          err << "allowed_row(h=" << h << ", i=" << i << ") differs from allowed at j=" << j;
          return err.str();
        }
        pairs += at(h, i, j);
      }
    }
    for (int64_t qt = 0; qt < map.q_tiles(); ++qt) {
      map.row(h, qt, row);
      size_t next = 0;
      for (int64_t kt = 0; kt < map.k_tiles(); ++kt) {
        int64_t n = 0, area = 0;
        for (int64_t i = qt * t.m; i < std::min(g.seqlen_q, (qt + 1) * t.m); ++i) {
          for (int64_t j = kt * t.n; j < std::min(g.seqlen_k, (kt + 1) * t.n); ++j) {
            n += at(h, i, j);
            ++area;
          }
        }
        const bool listed = next < row.size() && row[next].index == kt;
        if (listed != (n > 0)) {
          err << "head " << h << " q tile " << qt << " key tile " << kt << ": "
              << (listed ? "listed but has no visible pair" : "has visible pairs but not listed");
          return err.str();
        }
        if (listed) {
          if (row[next].full != (n == area)) {
            err << "head " << h << " q tile " << qt << " key tile " << kt << ": full flag "
                << row[next].full << " but " << n << " of " << area << " visible";
            return err.str();
          }
          ++visited;
          full += row[next].full;
          ++next;
        }
      }
      if (next != row.size()) {
        err << "head " << h << " q tile " << qt << ": row has unordered or extra tiles";
        return err.str();
      }
    }
  }
  if (map.pair_count() != pairs) {
    err << "pair_count " << map.pair_count() << " != brute force " << pairs;
  } else if (map.visited_tiles() != visited) {
    err << "visited_tiles " << map.visited_tiles() << " != " << visited;
  } else if (map.full_tiles() != full) {
    err << "full_tiles " << map.full_tiles() << " != " << full;
  }
  return err.str();
}

Tensors random_qkv(int64_t sq, int64_t sk, int64_t hq, int64_t hkv, int64_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  Tensors t;
  t.q.resize(size_t(sq * hq * d));
  t.k.resize(size_t(sk * hkv * d));
  t.v.resize(size_t(sk * hkv * d));
  for (auto* v : {&t.q, &t.k, &t.v}) {
    for (float& x : *v) x = nd(rng);
  }
  return t;
}

Diff run_vs_reference(const MaskSpec& mask, int64_t sq, int64_t sk, int64_t hq, int64_t hkv,
                      int64_t d, const std::string& backend, uint32_t seed,
                      const MaskSpec* reference_mask) {
  Tensors t = random_qkv(sq, sk, hq, hkv, d, seed);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> o(size_t(sq * hq * d), nan), lse(size_t(hq * sq), nan);
  std::vector<double> o_ref(o.size(), nan), lse_ref(lse.size(), nan);
  AttentionProblem p;
  p.q = TensorView::contiguous(t.q.data(), DType::f32, {1, sq, hq, d});
  p.k = TensorView::contiguous(t.k.data(), DType::f32, {1, sk, hkv, d});
  p.v = TensorView::contiguous(t.v.data(), DType::f32, {1, sk, hkv, d});
  p.o = TensorView::contiguous(o.data(), DType::f32, {1, sq, hq, d});
  p.lse = TensorView::contiguous(lse.data(), DType::f32, {1, hq, sq});
  p.mask = mask;
  attention(p, {.backend = backend});
  AttentionProblem r = p;
  r.o = TensorView::contiguous(o_ref.data(), DType::f64, {1, sq, hq, d});
  r.lse = TensorView::contiguous(lse_ref.data(), DType::f64, {1, hq, sq});
  if (reference_mask) r.mask = *reference_mask;
  attention(r, {.backend = "reference"});
  Diff diff;
  double num = 0, den = 0;
  for (size_t x = 0; x < o.size(); ++x) {
    if (std::isnan(o[x])) return {-1, -1, false};
    num += (o[x] - o_ref[x]) * (o[x] - o_ref[x]);
    den += o_ref[x] * o_ref[x];
  }
  diff.o_rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  for (size_t x = 0; x < lse.size(); ++x) {
    if (std::isinf(lse_ref[x]) || std::isinf(lse[x])) {
      diff.lse_inf_match &= double(lse[x]) == lse_ref[x];
    } else {
      diff.lse_abs = std::max(diff.lse_abs, std::abs(lse[x] - lse_ref[x]));
    }
  }
  return diff;
}

MaskSpec materialize(const BlockMap& map) {
  const MaskGeometry& g = map.geometry();
  auto bits = std::make_shared<std::vector<uint8_t>>(dense_mask(map));
  BlockMask m;
  m.block_q = m.block_k = 1;
  m.bits.view =
      TensorView::contiguous(bits->data(), DType::u8, {g.heads_q, g.seqlen_q, g.seqlen_k});
  m.bits.owner = bits;
  return MaskSpec(m);
}

}  // namespace polyhead::masktest
