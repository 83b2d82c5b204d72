// NumPy .npy files: read and write arrays for the CLI, tests and C++ users.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "polyhead/tensor.h"

namespace polyhead {

// An array read from a .npy file, in C order, host memory owned by `data`.
struct NpyArray {
  DType dtype = DType::f32;  // f32, f64, f16, i32, u8 (also bool); i64 files load as i32
  std::vector<int64_t> shape;
  std::shared_ptr<std::vector<uint8_t>> data;
  TensorView view() const;  // contiguous view of the whole array (rank <= 4)
};

// Reads a little-endian .npy (format 1.0-3.0) of float32, float64, float16, int32, int64 (narrowed
// to int32, which must fit), uint8 or bool, in C or Fortran order (Fortran is transposed to C).
// Throws Error naming the file and what is wrong.
NpyArray load_npy(const std::string& path);

// Writes a C-order .npy of the view's dtype (f32, f64, f16, i32, u8) from any strides.
void save_npy(const std::string& path, const TensorView& view);

}  // namespace polyhead
