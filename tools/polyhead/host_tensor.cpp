#include "host_tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "args.h"

namespace polyhead::cli {

void HostTensor::Free::operator()(void* p) const {
  std::free(p);
}

HostTensor::HostTensor(DType dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)) {
  if (shape_.empty() || shape_.size() > size_t(kMaxRank)) {
    throw UsageError("tensor rank " + std::to_string(shape_.size()) + " is not in [1, " +
                     std::to_string(kMaxRank) + "]");
  }
  numel_ = 1;
  for (int64_t d : shape_) numel_ *= d;
  // aligned_alloc needs a multiple of the alignment; 64 bytes keeps SIMD loads on one line.
  const size_t bytes = (size_t(numel_ * dtype_size(dtype_)) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  data_.reset(p);
}

TensorView HostTensor::view() const {
  std::vector<int> identity(shape_.size());
  for (size_t d = 0; d < shape_.size(); ++d) identity[d] = int(d);
  return permuted_view(identity);
}

TensorView HostTensor::permuted_view(const std::vector<int>& perm) const {
  TensorView t;
  t.data = data_.get();
  t.dtype = dtype_;
  t.rank = int(shape_.size());
  std::vector<int64_t> stride(shape_.size(), 1);
  for (size_t d = shape_.size() - 1; d-- > 0;) stride[d] = stride[d + 1] * shape_[d + 1];
  for (size_t d = 0; d < perm.size(); ++d) {
    t.shape[d] = shape_[size_t(perm[d])];
    t.stride[d] = stride[size_t(perm[d])];
  }
  return t;
}

double HostTensor::get(int64_t i) const {
  switch (dtype_) {
    case DType::f32:
      return static_cast<const float*>(data())[i];
    case DType::f64:
      return static_cast<const double*>(data())[i];
    case DType::f16:
      return half_to_float(static_cast<const uint16_t*>(data())[i]);
    case DType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(data())[i]);
    case DType::i32:
      return static_cast<const int32_t*>(data())[i];
    case DType::u8:
      return static_cast<const uint8_t*>(data())[i];
  }
  return 0.0;
}

void HostTensor::set(int64_t i, double value) {
  switch (dtype_) {
    case DType::f32:
      static_cast<float*>(data())[i] = float(value);
      break;
    case DType::f64:
      static_cast<double*>(data())[i] = value;
      break;
    case DType::f16:
      static_cast<uint16_t*>(data())[i] = float_to_half(float(value));
      break;
    case DType::bf16:
      static_cast<uint16_t*>(data())[i] = float_to_bf16(float(value));
      break;
    case DType::i32:
      static_cast<int32_t*>(data())[i] = int32_t(value);
      break;
    case DType::u8:
      static_cast<uint8_t*>(data())[i] = uint8_t(value);
      break;
  }
}

void HostTensor::fill(double value) {
  for (int64_t i = 0; i < numel_; ++i) set(i, value);
}

}  // namespace polyhead::cli
