// Mask specifications. Every kind answers allowed(h, i, j) and compiles to a BlockMap
// (block_map.h); see DESIGN.md section 3.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace polyhead {

// Where query row i sits among the keys: bottom-right (FlashAttention >= 2.1, the default)
// puts it at key position i + Sk - Sq, top-left at i.
enum class Alignment : uint8_t { bottom_right, top_left };

// Every (i, j) pair is visible.
struct NoMask {
  friend bool operator==(const NoMask&, const NoMask&) = default;
};

// Keys j with pos(i) - left <= j <= pos(i) + right are visible, pos(i) being the query's key
// position under `align`; -1 leaves a side unbounded. Causal is window (-1, 0).
struct WindowMask {
  int64_t left = -1;
  int64_t right = -1;
  Alignment align = Alignment::bottom_right;
  friend bool operator==(const WindowMask&, const WindowMask&) = default;
};

class MaskSpec {
 public:
  using Kind = std::variant<NoMask, WindowMask>;

  MaskSpec() = default;
  MaskSpec(Kind kind) : kind_(kind) {}  // NOLINT: implicit on purpose, MaskSpec m = WindowMask{..}

  static MaskSpec none() { return MaskSpec(); }
  static MaskSpec causal(Alignment align = Alignment::bottom_right) {
    return MaskSpec(WindowMask{-1, 0, align});
  }
  static MaskSpec window(int64_t left, int64_t right, Alignment align = Alignment::bottom_right) {
    return MaskSpec(WindowMask{left, right, align});
  }

  const Kind& kind() const { return kind_; }
  template <typename T>
  const T* get_if() const {
    return std::get_if<T>(&kind_);
  }
  bool is_none() const { return std::holds_alternative<NoMask>(kind_); }
  // The alignment that places query rows among keys (also used by ALiBi distances).
  Alignment alignment() const;

  // Text form, the grammar of `polyhead attend --mask`:
  //   none | causal | causal:topleft | window:LEFT,RIGHT[,topleft]
  std::string to_string() const;
  // Parses the text form; a malformed spec throws Error naming the bad field.
  static MaskSpec parse(std::string_view text);

  friend bool operator==(const MaskSpec&, const MaskSpec&) = default;

 private:
  Kind kind_;
};

}  // namespace polyhead
