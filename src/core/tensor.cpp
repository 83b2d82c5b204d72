#include "polyhead/tensor.h"

#include <sstream>

#include "polyhead/error.h"

namespace polyhead {

std::string to_string(const Device& d) {
  if (d.type == DeviceType::cpu) return "cpu";
  return "cuda:" + std::to_string(d.index);
}

TensorView TensorView::contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                                  Device device) {
  POLYHEAD_CHECK(shape.size() <= size_t(kMaxRank), "TensorView: rank ", shape.size(),
                 " exceeds the maximum ", kMaxRank);
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.rank = int(shape.size());
  t.device = device;
  int d = 0;
  for (int64_t s : shape) t.shape[d++] = s;
  int64_t stride = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.stride[i] = stride;
    stride *= t.shape[i];
  }
  return t;
}

TensorView TensorView::strided(void* data, DType dtype, std::initializer_list<int64_t> shape,
                               std::initializer_list<int64_t> stride, Device device) {
  POLYHEAD_CHECK(shape.size() == stride.size(), "TensorView: shape has ", shape.size(),
                 " dims but stride has ", stride.size());
  TensorView t = contiguous(data, dtype, shape, device);
  int d = 0;
  for (int64_t s : stride) t.stride[d++] = s;
  return t;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    POLYHEAD_CHECK(!__builtin_mul_overflow(n, shape[d], &n), "tensor ", describe(),
                   ": element count overflows int64");
  }
  return n;
}

int64_t TensorView::offset(std::initializer_list<int64_t> index) const {
  int64_t off = 0;
  int d = 0;
  for (int64_t i : index) off += i * stride[d++];
  return off;
}

std::string TensorView::describe() const {
  std::ostringstream os;
  os << "[";
  for (int d = 0; d < rank; ++d) os << (d ? ", " : "") << shape[d];
  os << "] " << dtype_name(dtype) << " strides [";
  for (int d = 0; d < rank; ++d) os << (d ? ", " : "") << stride[d];
  os << "] on " << to_string(device);
  return os.str();
}

}  // namespace polyhead
