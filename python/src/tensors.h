// DLPack arrays (nanobind ndarrays from numpy, PyTorch, ...) as polyhead::TensorView: the view
// points into the caller's memory with the caller's strides; nothing is copied.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "polyhead/tensor.h"

namespace polyhead::py {

namespace nb = nanobind;

// The polyhead element type of a DLPack dtype (bool counts as u8); nb::type_error naming
// `name` for the others.
DType dtype_of(nb::dlpack::dtype t, std::string_view name);
// The DLPack dtype that holds a polyhead element type.
nb::dlpack::dtype dlpack_dtype(DType t);
// "float32", "bfloat16", ... or "f32", "bf16", ...; nb::type_error for others.
DType dtype_from_name(std::string_view text, std::string_view name);
// "cpu", "cuda", "cuda:1"; nb::value_error for others.
Device device_from_name(std::string_view text, std::string_view name);

// A view of one array argument; nb::value_error / nb::type_error name `name` when the array
// cannot be described (rank above 4, an unsupported dtype or device).
TensorView view_of(const nb::ndarray<>& a, std::string_view name);

template <typename... Args>
TensorView view_of(const nb::ndarray<Args...>& a, std::string_view name) {
  return view_of(nb::ndarray<>(a), name);
}

// A view that points at no memory, for questions that only need shapes (supports, pair
// counts). `slot` spaces the fake addresses apart so that distinct placeholders never overlap;
// such a view must never be read or written.
TensorView placeholder(const std::vector<int64_t>& shape, DType dtype, Device device, int slot,
                       std::string_view name);

}  // namespace polyhead::py
