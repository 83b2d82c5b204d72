// MaskRule: the element rule and tile classification of one mask kind over one geometry.
// Every backend reads masks through this (via BlockMap), so a kind is defined once.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "polyhead/block_map.h"
#include "polyhead/mask.h"

namespace polyhead::detail {

class MaskRule {
 public:
  explicit MaskRule(const MaskGeometry& geometry) : geometry_(geometry) {}
  virtual ~MaskRule() = default;

  const MaskGeometry& geometry() const { return geometry_; }

  virtual bool allowed(int64_t head, int64_t i, int64_t j) const = 0;
  // Defaults evaluate allowed() element by element; kinds override with closed forms.
  virtual void allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const;
  virtual void key_tiles(int64_t head, int64_t q_tile, TileShape tile,
                         std::vector<KeyTile>& out) const;
  virtual int64_t row_pairs(int64_t head, int64_t i) const;
  // True when rows differ between query heads (per-head masks); false lets totals be
  // computed once and multiplied by the head count.
  virtual bool per_head() const { return false; }

 protected:
  MaskGeometry geometry_;
};

// Validates `spec` against `geometry` (throws Error) and builds its rule.
std::shared_ptr<const MaskRule> make_rule(const MaskSpec& spec, const MaskGeometry& geometry);

}  // namespace polyhead::detail
