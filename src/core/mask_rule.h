// MaskRule: the element rule and tile classification of one mask kind over one sequence's
// geometry. Every backend reads masks through this (via BlockMap), so a kind is defined once.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/mask_policy.h"
#include "polyhead/block_map.h"
#include "polyhead/mask.h"

namespace polyhead::detail {

struct KeyInterval {
  int64_t begin = 0, end = 0;  // keys [begin, end)
};

// Appends keys [b, e) to the sorted intervals `out`, merging with the last one when they touch.
inline void append_interval(std::vector<KeyInterval>& out, int64_t b, int64_t e) {
  if (b >= e) return;
  if (!out.empty() && out.back().end >= b) {
    if (e > out.back().end) out.back().end = e;
  } else {
    out.push_back({b, e});
  }
}

class MaskRule {
 public:
  explicit MaskRule(const MaskGeometry& geometry) : geometry_(geometry) {}
  virtual ~MaskRule() = default;

  const MaskGeometry& geometry() const { return geometry_; }

  virtual bool allowed(int64_t head, int64_t i, int64_t j) const = 0;
  // The visible keys of row i: sorted, disjoint, non-empty intervals (replaces `out`).
  virtual void row_intervals(int64_t head, int64_t i, std::vector<KeyInterval>& out) const = 0;

  // Derived from row_intervals; kinds with closed forms override them.
  virtual void allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const;
  virtual void key_tiles(int64_t head, int64_t q_tile, TileShape tile,
                         std::vector<KeyTile>& out) const;
  virtual int64_t row_pairs(int64_t head, int64_t i) const;

  // Heads with the same row group have identical rows: 0 for every head when the mask does
  // not depend on the head, the kv head for per-kv-head masks, the head for per-head masks.
  virtual int64_t row_group(int64_t /*head*/) const { return 0; }
  // The distinct row groups of heads [0, heads_q): the first head of each and how many heads
  // share its rows.
  struct RowGroup {
    int64_t first_head = 0, heads = 0;
  };
  std::vector<RowGroup> row_groups() const;
  // Exact number of visible (head, i, j) triples, one head evaluated per row group.
  int64_t pair_count() const;
  // Whether BlockMap should compute every row once and store it (kinds whose key_tiles costs
  // more than the tiles it returns); structured masks answer rows by formula instead.
  virtual bool stored() const { return true; }

 protected:
  MaskGeometry geometry_;
};

// Checks a spec's parameters against a geometry (throws Error); needs no tensor data.
void check_mask(const MaskSpec& spec, const MaskGeometry& geometry);

// Builds the rule of `spec` over one sequence. Data-dependent kinds need `inputs` (the
// sequence's q and k, see block_map.h) and run their selection here, on the host.
std::shared_ptr<const MaskRule> make_rule(const MaskSpec& spec, const MaskGeometry& geometry,
                                          const MaskInputs* inputs = nullptr);

// Per-kind builders (mask_rules_sparse.cpp, mask_select.cpp).
std::shared_ptr<const MaskRule> make_neighborhood_rule(const NeighborhoodMask& m,
                                                       const MaskGeometry& g);
std::shared_ptr<const MaskRule> make_strided_rule(const StridedMask& m, const MaskGeometry& g);
std::shared_ptr<const MaskRule> make_block_rule(const BlockMask& m, const MaskGeometry& g);
std::shared_ptr<const MaskRule> make_slice_rule(const SliceMask& m, const MaskGeometry& g);
std::shared_ptr<const MaskRule> make_per_head_rule(const PerHeadMask& m, const MaskGeometry& g);
std::shared_ptr<const MaskRule> make_longheads_rule(const LongHeadsMask& m, const MaskGeometry& g,
                                                    const MaskInputs& in);
std::shared_ptr<const MaskRule> make_dhsa_rule(const DhsaMask& m, const MaskGeometry& g,
                                               const MaskInputs& in);
std::shared_ptr<const MaskRule> make_topk_rule(const TopKMask& m, const MaskGeometry& g,
                                               const MaskInputs& in);

// Parameter checks of each kind (throw Error naming the bad field).
void check_neighborhood(const NeighborhoodMask& m, const MaskGeometry& g);
// The element rule of a neighborhood mask (mask_policy.h), for code that evaluates it
// directly (the cuda backend's patch-order block map).
NeighborhoodPolicy neighborhood_policy(const NeighborhoodMask& m);
void check_strided(const StridedMask& m, const MaskGeometry& g);
void check_block(const BlockMask& m, const MaskGeometry& g);
void check_slices(const SliceMask& m, const MaskGeometry& g);
void check_selection(const MaskSpec& spec, const MaskGeometry& g);

}  // namespace polyhead::detail
