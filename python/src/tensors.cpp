#include "tensors.h"

#include <string>

namespace polyhead::py {
namespace {

using nb::dlpack::dtype_code;

std::string dlpack_name(nb::dlpack::dtype t) {
  std::string code;
  switch (dtype_code(t.code)) {
    case dtype_code::Int:
      code = "int";
      break;
    case dtype_code::UInt:
      code = "uint";
      break;
    case dtype_code::Float:
      code = "float";
      break;
    case dtype_code::Bfloat:
      code = "bfloat";
      break;
    case dtype_code::Complex:
      code = "complex";
      break;
    case dtype_code::Bool:
      code = "bool";
      break;
    default:
      code = "code" + std::to_string(int(t.code)) + "_";
      break;
  }
  std::string s = code == "bool" ? code : code + std::to_string(int(t.bits));
  if (t.lanes != 1) s += "x" + std::to_string(int(t.lanes));
  return s;
}

std::string str(std::string_view a, std::string_view b = {}, std::string_view c = {},
                std::string_view d = {}) {
  std::string s(a);
  s += b;
  s += c;
  s += d;
  return s;
}

}  // namespace

DType dtype_of(nb::dlpack::dtype t, std::string_view name) {
  if (t.lanes == 1) {
    const auto code = dtype_code(t.code);
    if (code == dtype_code::Float && t.bits == 32) return DType::f32;
    if (code == dtype_code::Float && t.bits == 16) return DType::f16;
    if (code == dtype_code::Bfloat && t.bits == 16) return DType::bf16;
    if (code == dtype_code::Float && t.bits == 64) return DType::f64;
    if (code == dtype_code::Int && t.bits == 32) return DType::i32;
    if ((code == dtype_code::UInt || code == dtype_code::Bool) && t.bits == 8) return DType::u8;
  }
  throw nb::type_error(str(name, " has dtype ", dlpack_name(t),
                           ", which polyhead does not handle (float32, float16, bfloat16, "
                           "float64, int32, uint8, bool)")
                           .c_str());
}

nb::dlpack::dtype dlpack_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return nb::dtype<float>();
    case DType::f16:
      return {uint8_t(dtype_code::Float), 16, 1};
    case DType::bf16:
      return {uint8_t(dtype_code::Bfloat), 16, 1};
    case DType::f64:
      return nb::dtype<double>();
    case DType::i32:
      return nb::dtype<int32_t>();
    case DType::u8:
      return nb::dtype<uint8_t>();
  }
  return nb::dtype<float>();
}

DType dtype_from_name(std::string_view text, std::string_view name) {
  struct Entry {
    std::string_view long_name, short_name;
    DType dtype;
  };
  static constexpr Entry kTable[] = {
      {"float32", "f32", DType::f32},    {"float16", "f16", DType::f16},
      {"bfloat16", "bf16", DType::bf16}, {"float64", "f64", DType::f64},
      {"int32", "i32", DType::i32},      {"uint8", "u8", DType::u8},
  };
  for (const Entry& e : kTable) {
    if (text == e.long_name || text == e.short_name) return e.dtype;
  }
  throw nb::type_error(str(name, " dtype '", text,
                           "' is not one of float32, float16, bfloat16, float64, int32, uint8")
                           .c_str());
}

Device device_from_name(std::string_view text, std::string_view name) {
  if (text == "cpu") return {DeviceType::cpu, 0};
  if (text == "cuda") return {DeviceType::cuda, 0};
  if (text.starts_with("cuda:")) {
    const std::string index(text.substr(5));
    size_t used = 0;
    int i = -1;
    try {
      i = std::stoi(index, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == index.size() && i >= 0) return {DeviceType::cuda, i};
  }
  throw nb::value_error(str(name, " device '", text, "' is not 'cpu', 'cuda' or 'cuda:N'").c_str());
}

TensorView view_of(const nb::ndarray<>& a, std::string_view name) {
  TensorView v;
  if (a.ndim() > size_t(kMaxRank)) {
    throw nb::value_error(
        str(name, " has ", std::to_string(a.ndim()), " dimensions; polyhead tensors have at most 4")
            .c_str());
  }
  v.rank = int(a.ndim());
  v.dtype = dtype_of(a.dtype(), name);
  switch (a.device_type()) {
    case nb::device::cpu::value:
    case nb::device::cuda_host::value:  // pinned host memory: the host reads it directly
      v.device = {DeviceType::cpu, 0};
      break;
    case nb::device::cuda::value:
    case nb::device::cuda_managed::value:
      v.device = {DeviceType::cuda, a.device_id()};
      break;
    default:
      throw nb::value_error(str(name, " lives on DLPack device type ",
                                std::to_string(a.device_type()),
                                "; polyhead reads host (cpu) and CUDA memory")
                                .c_str());
  }
  v.data = const_cast<void*>(static_cast<const void*>(a.data()));
  int64_t contiguous = 1;  // DLPack allows null strides for C-contiguous arrays
  for (int d = v.rank - 1; d >= 0; --d) {
    v.shape[size_t(d)] = int64_t(a.shape(size_t(d)));
    v.stride[size_t(d)] = a.stride_ptr() ? a.stride(size_t(d)) : contiguous;
    contiguous *= v.shape[size_t(d)];
  }
  return v;
}

TensorView placeholder(const std::vector<int64_t>& shape, DType dtype, Device device, int slot,
                       std::string_view name) {
  if (shape.empty() || shape.size() > size_t(kMaxRank)) {
    throw nb::value_error(
        str(name, " shape has ", std::to_string(shape.size()), " dimensions; expected 1 to 4")
            .c_str());
  }
  TensorView v;
  v.rank = int(shape.size());
  v.dtype = dtype;
  v.device = device;
  int64_t contiguous = 1;
  for (int d = v.rank - 1; d >= 0; --d) {
    v.shape[size_t(d)] = shape[size_t(d)];
    v.stride[size_t(d)] = contiguous;
    contiguous *= std::max<int64_t>(shape[size_t(d)], 1);
  }
  // 16 TiB apart: far beyond any tensor whose shape a caller asks about, and aligned for every
  // element type and vector width.
  v.data = reinterpret_cast<void*>(uintptr_t(slot + 1) << 44);
  return v;
}

}  // namespace polyhead::py
