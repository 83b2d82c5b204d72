// HostTensor: an owning, 64-byte aligned host buffer of one dtype and its TensorView.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "polyhead/tensor.h"

namespace polyhead::cli {

class HostTensor {
 public:
  HostTensor() = default;
  // Zero-filled C-contiguous storage of `shape` (rank 1 to kMaxRank).
  HostTensor(DType dtype, std::vector<int64_t> shape);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const { return numel_; }
  int64_t bytes() const { return numel_ * dtype_size(dtype_); }
  void* data() { return data_.get(); }
  const void* data() const { return data_.get(); }

  // The C-contiguous view of the storage.
  TensorView view() const;
  // A view whose dimension d is storage dimension perm[d] (e.g. storage [B, H, S, D] seen as
  // [B, S, H, D] with perm {0, 2, 1, 3}).
  TensorView permuted_view(const std::vector<int>& perm) const;

  // Element i of the storage (C order) as double / written from double (rounded to dtype).
  double get(int64_t i) const;
  void set(int64_t i, double value);
  void fill(double value);

 private:
  struct Free {
    void operator()(void* p) const;
  };
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  std::unique_ptr<void, Free> data_;
};

}  // namespace polyhead::cli
