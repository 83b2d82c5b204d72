#include "polyhead/block_map.h"

#include "core/mask_rule.h"
#include "polyhead/error.h"

namespace polyhead {

BlockMap BlockMap::compile(const MaskSpec& spec, const MaskGeometry& geometry, TileShape tile) {
  POLYHEAD_CHECK(tile.m >= 1 && tile.n >= 1, "BlockMap: tile ", tile.m, "x", tile.n,
                 " must be at least 1x1");
  BlockMap map;
  map.rule_ = detail::make_rule(spec, geometry);
  map.geometry_ = geometry;
  map.tile_ = tile;
  return map;
}

int64_t BlockMap::q_tiles() const {
  return (geometry_.seqlen_q + tile_.m - 1) / tile_.m;
}
int64_t BlockMap::k_tiles() const {
  return (geometry_.seqlen_k + tile_.n - 1) / tile_.n;
}

void BlockMap::row(int64_t head, int64_t q_tile, std::vector<KeyTile>& out) const {
  rule_->key_tiles(head, q_tile, tile_, out);
}

bool BlockMap::allowed(int64_t head, int64_t i, int64_t j) const {
  return rule_->allowed(head, i, j);
}

void BlockMap::allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const {
  rule_->allowed_row(head, i, j0, count, out);
}

namespace {
// Sums f(head) over query heads, evaluating one head when the rows do not depend on it.
template <typename F>
int64_t sum_heads(const detail::MaskRule& rule, int64_t heads, F&& f) {
  if (!rule.per_head()) return heads * f(int64_t{0});
  int64_t total = 0;
  for (int64_t h = 0; h < heads; ++h) total += f(h);
  return total;
}
}  // namespace

int64_t BlockMap::visited_tiles() const {
  std::vector<KeyTile> tiles;
  return sum_heads(*rule_, geometry_.heads_q, [&](int64_t h) {
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
  return sum_heads(*rule_, geometry_.heads_q, [&](int64_t h) {
    int64_t n = 0;
    for (int64_t qt = 0; qt < q_tiles(); ++qt) {
      row(h, qt, tiles);
      for (const KeyTile& t : tiles) n += t.full ? 1 : 0;
    }
    return n;
  });
}

int64_t BlockMap::pair_count() const {
  return sum_heads(*rule_, geometry_.heads_q, [&](int64_t h) {
    int64_t n = 0;
    for (int64_t i = 0; i < geometry_.seqlen_q; ++i) n += rule_->row_pairs(h, i);
    return n;
  });
}

}  // namespace polyhead
