// Strided tensor views: a pointer, an element type, a shape and strides in elements.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "polyhead/dtype.h"

namespace polyhead {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  friend bool operator==(const Device&, const Device&) = default;
};

std::string to_string(const Device& d);

inline constexpr int kMaxRank = 4;

// A view of memory the caller owns. Strides are in elements and may be any value, so
// transposed and sliced views need no copies. Views of outputs must not overlap themselves.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  int rank = 0;
  std::array<int64_t, kMaxRank> shape{};
  std::array<int64_t, kMaxRank> stride{};
  Device device{};

  // Row-major (C-contiguous) view.
  static TensorView contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                               Device device = {});
  // View with explicit strides (in elements).
  static TensorView strided(void* data, DType dtype, std::initializer_list<int64_t> shape,
                            std::initializer_list<int64_t> stride, Device device = {});

  int64_t size(int d) const { return shape[d]; }
  // Number of elements; throws Error if it overflows int64.
  int64_t numel() const;
  // Element offset of an index (no bounds check).
  int64_t offset(std::initializer_list<int64_t> index) const;
  // "[2, 7, 4, 64] bf16 strides [1792, 256, 64, 1] on cpu"
  std::string describe() const;

  friend bool operator==(const TensorView&, const TensorView&) = default;
};

}  // namespace polyhead
