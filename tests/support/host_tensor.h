// HostTensor: an owning tensor in host memory, of any dtype and any layout, that yields the
// TensorViews the library takes. Unused storage (padding) holds a canary NaN, so a backend
// that reads padding gets NaN and one that writes it is caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "polyhead/tensor.h"

namespace polyhead::testing {

// How a tensor's logical row-major shape is laid out in memory.
struct Layout {
  bool swap_12 = false;      // dims 1 and 2 swapped in memory: [B, S, H, D] stored as
                             // [B, H, S, D] (lse [B, H, S] stored as [B, S, H])
  int64_t pad = 0;           // elements of padding after every row of every inner dimension
  int64_t inner_stride = 1;  // element stride of the last dimension

  bool contiguous() const { return !swap_12 && pad == 0 && inner_stride == 1; }
  std::string describe() const;
  friend bool operator==(const Layout&, const Layout&) = default;
};

// Raw element access for every dtype; `off` is in elements.
double load_element(DType t, const void* base, int64_t off);
void store_element(DType t, void* base, int64_t off, double v);  // rounds to t
// The canary bit pattern of `t` (a quiet NaN with a payload for float types).
uint64_t canary_bits(DType t);

class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, std::vector<int64_t> shape, const Layout& layout = {});

  DType dtype() const { return dtype_; }
  int rank() const { return int(shape_.size()); }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t numel() const;
  bool empty() const { return storage_ == nullptr; }

  // The whole allocation (view and padding), for snapshots and device copies.
  std::byte* storage() const;
  size_t storage_bytes() const;
  // Element offset of index [0, ...] within the storage (non-zero for slices).
  int64_t base_offset() const { return base_; }

  TensorView view() const;
  // The same shape and strides over a copy of the storage at `storage_base` (a device copy).
  TensorView view_at(void* storage_base, Device device) const;
  // [start, start + length) along `dim`, sharing this tensor's storage (packed QKV).
  HostTensor slice(int dim, int64_t start, int64_t length) const;

  // Logical row-major index <-> multi-index and storage offset.
  std::vector<int64_t> unravel(int64_t flat) const;
  int64_t ravel(std::initializer_list<int64_t> index) const;
  int64_t offset_of(int64_t flat) const;
  std::string index_string(int64_t flat) const;  // "[0, 3, 1, 5]"

  double get(int64_t flat) const;
  void set(int64_t flat, double value);  // rounds to the dtype
  double at(std::initializer_list<int64_t> index) const { return get(ravel(index)); }
  void set_at(std::initializer_list<int64_t> index, double v) { set(ravel(index), v); }

  // Every storage element := the canary (outputs are poisoned with it before each run).
  void fill_canary();
  // Storage elements outside the view that no longer hold the canary.
  int64_t padding_changed() const;
  std::vector<std::byte> snapshot() const;

  // A contiguous f64 tensor with the same logical values.
  HostTensor to_f64() const;
  std::string describe() const;

 private:
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_, strides_;
  int64_t base_ = 0;
  int64_t storage_elements_ = 0;
  std::shared_ptr<std::vector<double>> storage_;  // doubles: 8-byte alignment for every dtype
};

// Reads any host TensorView (float dtypes) into a contiguous f64 HostTensor.
HostTensor copy_to_f64(const TensorView& view);

}  // namespace polyhead::testing
