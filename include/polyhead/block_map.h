// BlockMap: a mask compiled for one tile shape. For each (query head, query tile) it lists the
// key tiles to visit, each marked full (no masking work) or partial (evaluate the element rule).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "polyhead/mask.h"
#include "polyhead/tensor.h"

namespace polyhead {

namespace detail {
class MaskRule;
}

// The extents a mask is evaluated over: one sequence (varlen batches compile one map per
// sequence), with its query and key lengths and the head layout.
struct MaskGeometry {
  int64_t seqlen_q = 0;
  int64_t seqlen_k = 0;
  int64_t heads_q = 1;
  int64_t heads_kv = 1;
};

// The tensors a data-dependent mask (LongHeads, DHSA, top-k) selects from, for one sequence.
struct MaskInputs {
  TensorView q;         // [Sq, Hq, Dqk] of this sequence, on the host
  TensorView k;         // [Sk, Hkv, Dqk] of this sequence, on the host
  int64_t batch = 0;    // the sequence's index in dimension 0 of a [B, Hkv, Sk] score tensor
  int64_t k_start = 0;  // its first key in a packed [Hkv, total_k] score tensor
};

struct TileShape {
  int64_t m = 64;  // query rows per tile
  int64_t n = 64;  // keys per tile
};

struct KeyTile {
  int64_t index = 0;  // key tile index: keys [index * n, min((index + 1) * n, Sk))
  bool full = false;  // every (i, j) of the tile is visible
};

class BlockMap {
 public:
  // Throws Error if the spec does not fit the geometry (e.g. a negative window). Masks that
  // select keys from the data (MaskSpec::is_dynamic) need `inputs` and select here.
  static BlockMap compile(const MaskSpec& spec, const MaskGeometry& geometry, TileShape tile,
                          const MaskInputs* inputs = nullptr);

  const MaskGeometry& geometry() const { return geometry_; }
  TileShape tile() const { return tile_; }
  int64_t q_tiles() const;
  int64_t k_tiles() const;

  // Key tiles visited by query tile `q_tile` of query head `head`, ascending; replaces `out`.
  void row(int64_t head, int64_t q_tile, std::vector<KeyTile>& out) const;
  // The element rule: may query row i of head `head` see key j?
  bool allowed(int64_t head, int64_t i, int64_t j) const;
  // allowed(head, i, j0 + t) for t in [0, count), written as 0/1 into `out`.
  void allowed_row(int64_t head, int64_t i, int64_t j0, int64_t count, uint8_t* out) const;

  // Totals over every query head and query tile.
  int64_t visited_tiles() const;
  int64_t full_tiles() const;
  // Exact number of visible (head, i, j) triples, summed over query heads.
  int64_t pair_count() const;

 private:
  BlockMap() = default;
  std::shared_ptr<const detail::MaskRule> rule_;
  // Stored rows (for kinds without a closed form): row r = group * q_tiles + q_tile spans
  // tiles_[offsets_[r], offsets_[r + 1]); group_of_head_[h] is head h's row group.
  std::vector<int64_t> group_of_head_;
  std::vector<int64_t> offsets_;
  std::vector<KeyTile> tiles_;
  MaskGeometry geometry_;
  TileShape tile_;
};

}  // namespace polyhead
