// Mask specifications (DESIGN.md section 3). Every kind answers allowed(h, i, j) and compiles
// to a BlockMap (block_map.h) of full and partial tiles; kernels iterate the map, so cost
// follows the tiles a mask leaves. Query row i sits at key position pos(i) = i + Sk - Sq
// (bottom-right alignment, as in FlashAttention) unless a kind says otherwise.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "polyhead/tensor.h"

namespace polyhead {

// Where query row i sits among the keys: bottom-right (FlashAttention >= 2.1, the default)
// puts it at key position i + Sk - Sq, top-left at i.
enum class Alignment : uint8_t { bottom_right, top_left };

// Every (i, j) pair is visible.
struct NoMask {
  friend bool operator==(const NoMask&, const NoMask&) = default;
};

// Keys j with pos(i) - left <= j <= pos(i) + right are visible; -1 leaves a side unbounded.
// Causal is window (-1, 0). With sink = N, the first N keys are visible too (StreamingLLM's
// attention sinks), still subject to the right bound: j < N and j <= pos(i) + right.
struct WindowMask {
  int64_t left = -1;
  int64_t right = -1;
  Alignment align = Alignment::bottom_right;
  int64_t sink = 0;
  friend bool operator==(const WindowMask&, const WindowMask&) = default;
};

// Neighborhood attention (NA, dilated NA, causal NA, strided GNA; NATTEN's rule) over a token
// grid of 1 to 3 dimensions in row-major order (last dimension fastest); Sq = Sk = prod(grid).
// Per dimension: kernel size k (odd or even), dilation d, stride s (1 <= s <= k), causal flag,
// with k * d <= grid. A non-causal query sees exactly prod(k) keys: its window is shifted, not
// truncated, at the edges. kernels.md section 8 gives the exact per-dimension rule.
struct NeighborhoodMask {
  int rank = 1;
  std::array<int64_t, 3> grid{1, 1, 1};
  std::array<int64_t, 3> kernel{1, 1, 1};
  std::array<int64_t, 3> dilation{1, 1, 1};
  std::array<int64_t, 3> stride{1, 1, 1};
  std::array<bool, 3> causal{false, false, false};
  friend bool operator==(const NeighborhoodMask&, const NeighborhoodMask&) = default;
};

// S2-Attention's per-head strided sharding (kernels.md section 7): causal, at block
// granularity; kv head g keeps its `local` most recent key blocks and every key block kb with
// (kb + g * step + offset) % vstride == 0, step = max(1, vstride / Hq); the last `dense_heads`
// kv heads are dense causal; homo_heads uses g = 0 for every head.
struct StridedMask {
  int64_t block = 64;
  int64_t local = 4;
  int64_t vstride = 4;
  int64_t offset = 0;
  int64_t dense_heads = 0;
  bool homo_heads = false;
  friend bool operator==(const StridedMask&, const StridedMask&) = default;
};

// A tensor held by a mask: a view plus, when the mask owns the memory (e.g. loaded from a
// file), the owner that keeps it alive. `source` names the file it came from, if any.
struct MaskTensor {
  TensorView view;
  std::shared_ptr<const void> owner;
  std::string source;
  friend bool operator==(const MaskTensor& a, const MaskTensor& b) { return a.view == b.view; }
};

// A user block mask: bits [H or 1, ceil(Sq / block_q), ceil(Sk / block_k)] (u8, nonzero =
// visible; H = query heads) on the host; (i, j) is visible when its block is. Extra trailing
// blocks are ignored, so one mask serves every sequence of a packed batch.
struct BlockMask {
  MaskTensor bits;
  int64_t block_q = 64;
  int64_t block_k = 64;
  friend bool operator==(const BlockMask&, const BlockMask&) = default;
};

// MagiAttention's AttnSlice form, in which LongCA-bench writes its masks (documents, shared
// questions, prefix-LM, block-causal, ...): (i, j) is visible when some slice holds it. A
// slice covers queries [q_begin, q_end) and keys [k_begin, k_end) with a geometry:
// full; causal, bottom-right aligned (j <= i + k_end - q_end); inv_causal, top-left aligned
// (j >= i + k_begin - q_begin); bi_causal, both. Slices may overlap.
enum class SliceType : uint8_t { full, causal, inv_causal, bi_causal };
struct AttnSlice {
  int64_t q_begin = 0, q_end = 0, k_begin = 0, k_end = 0;
  SliceType type = SliceType::full;
  friend bool operator==(const AttnSlice&, const AttnSlice&) = default;
};
struct SliceMask {
  std::vector<AttnSlice> slices;
  friend bool operator==(const SliceMask&, const SliceMask&) = default;
};

class MaskSpec;

// One spec per query head (MoA's heterogeneous elastic windows, or any mix of static kinds).
struct PerHeadMask {
  std::vector<MaskSpec> heads;
  friend bool operator==(const PerHeadMask&, const PerHeadMask&);
};

// Data-dependent selections, computed inside the library from q and k (or a score tensor) on
// the backend that runs the attention. All three are causal (j <= pos(i)).

// LongHeads: per head and query, the key chunks of `chunk` tokens scored by q_i . mean(k_chunk);
// the first and the last complete chunk, the top k - 3 others and the incomplete tail chunk
// are visible (all of them when there are no more than k complete chunks).
struct LongHeadsMask {
  int64_t chunk = 256;
  int64_t k = 16;
  friend bool operator==(const LongHeadsMask&, const LongHeadsMask&) = default;
};

// DHSA: one selection shared by all heads, per query block of `chunk` rows: key chunks scored
// by mean_heads,block(q) . (sqrt(chunk) * mean_heads,chunk(k)); the first chunk, the top k
// others and the `recent` keys before each block's end are visible.
struct DhsaMask {
  int64_t chunk = 64;
  int64_t k = 8;
  int64_t recent = 64;
  friend bool operator==(const DhsaMask&, const DhsaMask&) = default;
};

// DMA-style dynamic top-k: per kv head and query, the k keys with the highest score among the
// causal window of `window` keys ending at pos(i) (ties: the later key). scores are f32
// [Hkv, Sk] or [B, Hkv, Sk] (per packed batch: [Hkv, total_k]).
struct TopKMask {
  int64_t k = 64;
  int64_t window = 1024;
  MaskTensor scores;
  friend bool operator==(const TopKMask&, const TopKMask&) = default;
};

class MaskSpec {
 public:
  using Kind = std::variant<NoMask, WindowMask, NeighborhoodMask, StridedMask, BlockMask, SliceMask,
                            PerHeadMask, LongHeadsMask, DhsaMask, TopKMask>;

  MaskSpec() = default;
  MaskSpec(Kind kind) : kind_(std::move(kind)) {}  // NOLINT: MaskSpec m = WindowMask{...}

  static MaskSpec none() { return MaskSpec(); }
  static MaskSpec causal(Alignment align = Alignment::bottom_right) {
    return MaskSpec(WindowMask{-1, 0, align, 0});
  }
  static MaskSpec window(int64_t left, int64_t right, Alignment align = Alignment::bottom_right,
                         int64_t sink = 0) {
    return MaskSpec(WindowMask{left, right, align, sink});
  }

  const Kind& kind() const { return kind_; }
  template <typename T>
  const T* get_if() const {
    return std::get_if<T>(&kind_);
  }
  bool is_none() const { return std::holds_alternative<NoMask>(kind_); }
  // True for the kinds that select keys from the data (LongHeads, DHSA, top-k).
  bool is_dynamic() const;
  // The alignment that places query rows among keys (also used by ALiBi distances).
  Alignment alignment() const;

  // Text form, the grammar of `polyhead attend --mask` (README "Masks"):
  //   none | causal[:topleft] | window:LEFT,RIGHT[,sink=N][,topleft]
  //   na:grid=16x16,kernel=5x5[,dilation=1x1][,stride=1x1][,causal=0x0]
  //   s2:block=64,local=4,vstride=4[,offset=0][,dense_heads=0][,homo=0]
  //   heads:SPEC|SPEC|...            (one spec per query head)
  //   blocks:FILE.npy,bq=64,bk=64   (bool/u8 [H or 1, ceil(Sq/bq), ceil(Sk/bk)])
  //   slices:QB,QE,KB,KE,TYPE|...   (TYPE full|causal|invcausal|bicausal) or slices:FILE.npy
  //                                 (int32 [n, 5], TYPE 0-3)
  //   longheads:chunk=256,k=16 | dhsa:chunk=64,k=8,recent=64
  //   topk:k=64,window=1024,scores=FILE.npy
  std::string to_string() const;
  // Parses the text form (loading the .npy files it names); a malformed spec throws Error
  // naming the bad field.
  static MaskSpec parse(std::string_view text);

  friend bool operator==(const MaskSpec&, const MaskSpec&) = default;

 private:
  Kind kind_;
};

inline bool operator==(const PerHeadMask& a, const PerHeadMask& b) {
  return a.heads == b.heads;
}

// MoA's elastic per-head windows (kernels.md section 10) as one causal window per head: head h
// keeps C_h = min(floor(alpha_h + beta_h * n_total), n_total) keys, raised to at least
// `min_cache` and rounded up to a multiple of `split`; of those, the first min(C_h, sink) tokens
// are sinks and the other C_h - sink the most recent keys.
MaskSpec moa_heads(const std::vector<double>& alpha, const std::vector<double>& beta,
                   int64_t n_total, int64_t sink = 64, int64_t min_cache = 128, int64_t split = 64);

}  // namespace polyhead
