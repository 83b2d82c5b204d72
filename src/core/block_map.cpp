#include "polyhead/block_map.h"

#include "core/mask_rule.h"
#include "polyhead/error.h"

namespace polyhead {

BlockMap BlockMap::compile(const MaskSpec& spec, const MaskGeometry& geometry, TileShape tile,
                           const MaskInputs* inputs) {
  POLYHEAD_CHECK(tile.m >= 1 && tile.n >= 1, "BlockMap: tile ", tile.m, "x", tile.n,
                 " must be at least 1x1");
  BlockMap map;
  map.rule_ = detail::make_rule(spec, geometry, inputs);
  map.geometry_ = geometry;
  map.tile_ = tile;
  if (!map.rule_->stored()) return map;

  // Compute every distinct row group's rows once (heads of one group share them).
  const int64_t q_tiles = map.q_tiles();
  const auto groups = map.rule_->row_groups();
  std::vector<int64_t> first_head;
  map.group_of_head_.resize(size_t(geometry.heads_q));
  for (size_t g = 0; g < groups.size(); ++g) {
    first_head.push_back(groups[g].first_head);
    const int64_t id = map.rule_->row_group(groups[g].first_head);
    for (int64_t h = 0; h < geometry.heads_q; ++h) {
      if (map.rule_->row_group(h) == id) map.group_of_head_[size_t(h)] = int64_t(g);
    }
  }
  const int64_t rows = int64_t(first_head.size()) * q_tiles;
  std::vector<std::vector<KeyTile>> row_tiles(static_cast<size_t>(rows));
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t r = 0; r < rows; ++r) {
    map.rule_->key_tiles(first_head[size_t(r / q_tiles)], r % q_tiles, tile, row_tiles[size_t(r)]);
  }
  map.offsets_.assign(size_t(rows) + 1, 0);
  for (int64_t r = 0; r < rows; ++r) {
    map.offsets_[size_t(r) + 1] = map.offsets_[size_t(r)] + int64_t(row_tiles[size_t(r)].size());
  }
  map.tiles_.reserve(size_t(map.offsets_.back()));
  for (const auto& t : row_tiles) map.tiles_.insert(map.tiles_.end(), t.begin(), t.end());
  return map;
}

int64_t BlockMap::q_tiles() const {
  return (geometry_.seqlen_q + tile_.m - 1) / tile_.m;
}
int64_t BlockMap::k_tiles() const {
  return (geometry_.seqlen_k + tile_.n - 1) / tile_.n;
}

void BlockMap::row(int64_t head, int64_t q_tile, std::vector<KeyTile>& out) const {
  if (offsets_.empty()) return rule_->key_tiles(head, q_tile, tile_, out);
  const int64_t r = group_of_head_[size_t(head)] * q_tiles() + q_tile;
  out.assign(tiles_.begin() + offsets_[size_t(r)], tiles_.begin() + offsets_[size_t(r) + 1]);
}

bool BlockMap::allowed(int64_t head, int64_t i, int64_t j) const {
  return rule_->allowed(head, i, j);
}

void BlockMap::allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const {
  rule_->allowed_row(head, i, j0, count, out);
}

namespace {
// Sums f(head) over query heads, evaluating one head per row group.
template <typename F>
int64_t sum_heads(const detail::MaskRule& rule, F&& f) {
  int64_t total = 0;
  for (const auto& g : rule.row_groups()) total += g.heads * f(g.first_head);
  return total;
}
}  // namespace

int64_t BlockMap::visited_tiles() const {
  std::vector<KeyTile> tiles;
  return sum_heads(*rule_, [&](int64_t h) {
    int64_t n = 0;
    for (int64_t qt = 0; qt < q_tiles(); ++qt) {
      row(h, qt, tiles);
      n += int64_t(tiles.size());
    }
    return n;
  });
}

int64_t BlockMap::full_tiles() const {
  std::vector<KeyTile> tiles;
  return sum_heads(*rule_, [&](int64_t h) {
    int64_t n = 0;
    for (int64_t qt = 0; qt < q_tiles(); ++qt) {
      row(h, qt, tiles);
      for (const KeyTile& t : tiles) n += t.full ? 1 : 0;
    }
    return n;
  });
}

int64_t BlockMap::pair_count() const {
  return rule_->pair_count();
}

}  // namespace polyhead
