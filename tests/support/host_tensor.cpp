#include "support/host_tensor.h"

#include <bit>
#include <cstring>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "polyhead/dtype.h"

namespace polyhead::testing {

std::string Layout::describe() const {
  if (contiguous()) return "contiguous";
  std::ostringstream os;
  const char* sep = "";
  if (swap_12) os << "dims 1,2 swapped", sep = ", ";
  if (pad) os << sep << "pad " << pad, sep = ", ";
  if (inner_stride != 1) os << sep << "inner stride " << inner_stride;
  return os.str();
}

double load_element(DType t, const void* base, int64_t off) {
  switch (t) {
    case DType::f32:
      return static_cast<const float*>(base)[off];
    case DType::f64:
      return static_cast<const double*>(base)[off];
    case DType::f16:
      return half_to_float(static_cast<const uint16_t*>(base)[off]);
    case DType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(base)[off]);
    case DType::i32:
      return static_cast<const int32_t*>(base)[off];
    case DType::u8:
      return static_cast<const uint8_t*>(base)[off];
  }
  return 0.0;
}

void store_element(DType t, void* base, int64_t off, double v) {
  switch (t) {
    case DType::f32:
      static_cast<float*>(base)[off] = float(v);
      return;
    case DType::f64:
      static_cast<double*>(base)[off] = v;
      return;
    case DType::f16:
      static_cast<uint16_t*>(base)[off] = float_to_half(float(v));
      return;
    case DType::bf16:
      static_cast<uint16_t*>(base)[off] = float_to_bf16(float(v));
      return;
    case DType::i32:
      static_cast<int32_t*>(base)[off] = int32_t(v);
      return;
    case DType::u8:
      static_cast<uint8_t*>(base)[off] = uint8_t(v);
      return;
  }
}

uint64_t canary_bits(DType t) {
  switch (t) {
    case DType::f32:
      return 0x7fc5a5a5u;
    case DType::f64:
      return 0x7ff8a5a5a5a5a5a5u;
    case DType::f16:
      return 0x7e5au;
    case DType::bf16:
      return 0x7fc5u;
    case DType::i32:
      return 0x5a5a5a5au;
    case DType::u8:
      return 0x5au;
  }
  return 0;
}

namespace {

uint64_t raw_bits(DType t, const std::byte* base, int64_t off) {
  const int64_t size = dtype_size(t);
  uint64_t bits = 0;
  std::memcpy(&bits, base + off * size, size_t(size));  // little-endian hosts
  return bits;
}

void set_raw_bits(DType t, std::byte* base, int64_t off, uint64_t bits) {
  const int64_t size = dtype_size(t);
  std::memcpy(base + off * size, &bits, size_t(size));
}

}  // namespace

HostTensor::HostTensor(DType dtype, std::vector<int64_t> shape, const Layout& layout)
    : dtype_(dtype), shape_(std::move(shape)), strides_(shape_.size(), 0) {
  const int r = rank();
  std::vector<int> order(static_cast<size_t>(r));  // memory order, outermost first
  std::iota(order.begin(), order.end(), 0);
  if (layout.swap_12 && r >= 3) std::swap(order[1], order[2]);
  int64_t step = layout.inner_stride;
  for (int m = r - 1; m >= 0; --m) {
    const int d = order[size_t(m)];
    strides_[size_t(d)] = step;
    step = step * shape_[size_t(d)] + layout.pad;
  }
  int64_t last = 0;
  for (int d = 0; d < r; ++d) last += (shape_[size_t(d)] - 1) * strides_[size_t(d)];
  storage_elements_ = last + 1 + layout.pad;  // trailing padding catches writes past the end
  const size_t bytes = size_t(storage_elements_ * dtype_size(dtype_));
  storage_ = std::make_shared<std::vector<double>>((bytes + 7) / 8);
  fill_canary();
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

std::byte* HostTensor::storage() const {
  return reinterpret_cast<std::byte*>(storage_->data());
}

size_t HostTensor::storage_bytes() const {
  return size_t(storage_elements_ * dtype_size(dtype_));
}

TensorView HostTensor::view() const {
  return view_at(storage(), Device{});
}

TensorView HostTensor::view_at(void* storage_base, Device device) const {
  TensorView t;
  t.data = static_cast<std::byte*>(storage_base) + base_ * dtype_size(dtype_);
  t.dtype = dtype_;
  t.rank = rank();
  t.device = device;
  for (int d = 0; d < rank(); ++d) {
    t.shape[size_t(d)] = shape_[size_t(d)];
    t.stride[size_t(d)] = strides_[size_t(d)];
  }
  return t;
}

HostTensor HostTensor::slice(int dim, int64_t start, int64_t length) const {
  HostTensor s = *this;
  s.base_ = base_ + start * strides_[size_t(dim)];
  s.shape_[size_t(dim)] = length;
  return s;
}

std::vector<int64_t> HostTensor::unravel(int64_t flat) const {
  std::vector<int64_t> index(shape_.size());
  for (int d = rank() - 1; d >= 0; --d) {
    index[size_t(d)] = flat % shape_[size_t(d)];
    flat /= shape_[size_t(d)];
  }
  return index;
}

int64_t HostTensor::ravel(std::initializer_list<int64_t> index) const {
  if (int(index.size()) != rank()) throw std::invalid_argument("HostTensor::ravel: wrong rank");
  int64_t flat = 0;
  int d = 0;
  for (int64_t i : index) flat = flat * shape_[size_t(d++)] + i;
  return flat;
}

int64_t HostTensor::offset_of(int64_t flat) const {
  int64_t off = base_;
  for (int d = rank() - 1; d >= 0; --d) {
    off += (flat % shape_[size_t(d)]) * strides_[size_t(d)];
    flat /= shape_[size_t(d)];
  }
  return off;
}

std::string HostTensor::index_string(int64_t flat) const {
  std::ostringstream os;
  os << "[";
  const auto index = unravel(flat);
  for (size_t d = 0; d < index.size(); ++d) os << (d ? ", " : "") << index[d];
  os << "]";
  return os.str();
}

double HostTensor::get(int64_t flat) const {
  return load_element(dtype_, storage(), offset_of(flat));
}

void HostTensor::set(int64_t flat, double value) {
  store_element(dtype_, storage(), offset_of(flat), value);
}

void HostTensor::fill_canary() {
  const uint64_t bits = canary_bits(dtype_);
  for (int64_t e = 0; e < storage_elements_; ++e) set_raw_bits(dtype_, storage(), e, bits);
}

int64_t HostTensor::padding_changed() const {
  std::vector<bool> in_view(size_t(storage_elements_), false);
  for (int64_t f = 0, n = numel(); f < n; ++f) in_view[size_t(offset_of(f))] = true;
  const uint64_t bits = canary_bits(dtype_);
  int64_t changed = 0;
  for (int64_t e = 0; e < storage_elements_; ++e) {
    if (!in_view[size_t(e)] && raw_bits(dtype_, storage(), e) != bits) ++changed;
  }
  return changed;
}

std::vector<std::byte> HostTensor::snapshot() const {
  return std::vector<std::byte>(storage(), storage() + storage_bytes());
}

HostTensor HostTensor::to_f64() const {
  HostTensor out(DType::f64, shape_);
  for (int64_t f = 0, n = numel(); f < n; ++f) out.set(f, get(f));
  return out;
}

std::string HostTensor::describe() const {
  return view().describe();
}

HostTensor copy_to_f64(const TensorView& view) {
  std::vector<int64_t> shape(view.shape.begin(), view.shape.begin() + view.rank);
  HostTensor out(DType::f64, shape);
  for (int64_t f = 0, n = out.numel(); f < n; ++f) {
    int64_t off = 0, rest = f;
    for (int d = view.rank - 1; d >= 0; --d) {
      off += (rest % view.shape[size_t(d)]) * view.stride[size_t(d)];
      rest /= view.shape[size_t(d)];
    }
    out.set(f, load_element(view.dtype, view.data, off));
  }
  return out;
}

}  // namespace polyhead::testing
