#include "cuda/fwd/block_map_device.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "core/mask_rule.h"
#include "core/pack_bits.h"
#include "polyhead/error.h"

namespace polyhead::cuda {
namespace {

int32_t checked_i32(size_t x, const char* what) {
  POLYHEAD_CHECK(x <= size_t(std::numeric_limits<int32_t>::max()), "cuda backend: the block map ",
                 "has ", x, " ", what, ", more than int32 indexes");
  return int32_t(x);
}

// Appends the rows of every row group of one sequence geometry; returns the first row of
// each query head.
std::vector<int32_t> append_geometry(const AttentionProblem& p, const ProblemShape& s,
                                     const MaskGeometry& g, TileShape tile, HostBlockMap& out) {
  const BlockMap map = BlockMap::compile(p.mask, g, tile);
  const auto rule = detail::make_rule(p.mask, g);
  const int64_t words = tile.n / 32;
  const int64_t q_tiles = map.q_tiles();
  std::vector<int32_t> head_row(size_t(s.heads_q));
  std::map<int64_t, int32_t> group_row;  // row group -> its first row
  std::vector<KeyTile> row;
  std::vector<uint8_t> allowed(size_t(tile.n));
  for (int64_t h = 0; h < s.heads_q; ++h) {
    const int64_t group = rule->row_group(h);
    if (auto it = group_row.find(group); it != group_row.end()) {
      head_row[size_t(h)] = it->second;
      continue;
    }
    const int32_t first = checked_i32(out.row_ptr.size() - 1, "rows");
    group_row.emplace(group, first);
    head_row[size_t(h)] = first;
    for (int64_t qt = 0; qt < q_tiles; ++qt) {
      map.row(h, qt, row);
      for (const KeyTile& t : row) {
        int32_t slot = -1;
        if (!t.full) {
          slot = checked_i32(out.bits.size() / size_t(tile.m * words), "partial tiles");
          const int64_t k0 = t.index * tile.n, count = std::min(tile.n, g.seqlen_k - k0);
          for (int64_t r = 0; r < tile.m; ++r) {
            const int64_t i = qt * tile.m + r;
            uint32_t w[4] = {};
            if (i < g.seqlen_q) {
              map.allowed_row(h, i, k0, count, allowed.data());
              detail::pack_bits(allowed.data(), count, w);
            }
            out.bits.insert(out.bits.end(), w, w + words);
          }
        }
        out.tiles.push_back(checked_i32(size_t(t.index), "key tiles"));
        out.tiles.push_back(slot);
      }
      out.row_ptr.push_back(checked_i32(out.tiles.size() / 2, "entries"));
    }
  }
  return head_row;
}

}  // namespace

HostBlockMap build_block_map(const AttentionProblem& p, const ProblemShape& s,
                             const std::vector<detail::Sequence>& seqs, TileShape tile) {
  POLYHEAD_CHECK(tile.n % 32 == 0 && tile.n <= 128, "cuda backend: block-map tile width ", tile.n,
                 " must be a multiple of 32, at most 128");
  HostBlockMap out;
  out.row_ptr.push_back(0);
  out.row_start.reserve(seqs.size() * size_t(s.heads_q));
  std::map<std::pair<int64_t, int64_t>, std::vector<int32_t>> by_geometry;
  for (const detail::Sequence& seq : seqs) {
    const std::pair<int64_t, int64_t> key{seq.seqlen_q, seq.seqlen_k};
    auto it = by_geometry.find(key);
    if (it == by_geometry.end()) {
      const MaskGeometry g{seq.seqlen_q, seq.seqlen_k, s.heads_q, s.heads_kv};
      it = by_geometry.emplace(key, append_geometry(p, s, g, tile, out)).first;
    }
    out.row_start.insert(out.row_start.end(), it->second.begin(), it->second.end());
  }
  return out;
}

}  // namespace polyhead::cuda
