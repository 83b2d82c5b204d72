// load_npy / save_npy: the library's .npy reader and writer, so Python sees exactly the files
// the CLI reads (mask blocks, top-k scores) and writes.
#include <nanobind/stl/string.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "polyhead/npy.h"
#include "tensors.h"

namespace polyhead::py {
namespace {

// A numpy array over the loaded bytes (no copy); the capsule keeps them alive.
nb::ndarray<nb::numpy> load(const std::string& path) {
  NpyArray a;
  {
    nb::gil_scoped_release release;
    a = load_npy(path);
  }
  auto* keep = new std::shared_ptr<std::vector<uint8_t>>(a.data);
  nb::capsule owner(keep, [](void* p) noexcept {
    delete static_cast<std::shared_ptr<std::vector<uint8_t>>*>(p);
  });
  std::vector<size_t> shape(a.shape.begin(), a.shape.end());
  return nb::ndarray<nb::numpy>(a.data->data(), shape.size(), shape.data(), owner, nullptr,
                                dlpack_dtype(a.dtype), nb::device::cpu::value);
}

void save(const std::string& path, const nb::ndarray<nb::ro>& array) {
  const TensorView v = view_of(array, "array");
  if (v.device.type != DeviceType::cpu) {
    throw nb::value_error(("array is on " + to_string(v.device) +
                           "; save_npy writes host arrays (copy it to the CPU first)")
                              .c_str());
  }
  nb::gil_scoped_release release;
  save_npy(path, v);
}

}  // namespace

void bind_npy(nb::module_& m) {
  m.def("load_npy", &load, nb::arg("path"),
        "Reads a .npy file (float32/64, float16, int32, int64 narrowed to int32, uint8, bool as "
        "uint8; C or Fortran order) into a C-order numpy array.");
  m.def("save_npy", &save, nb::arg("path"), nb::arg("array"),
        "Writes a host array of rank <= 4 (float32/64, float16, int32, uint8), any strides, as "
        "a C-order .npy file.");
}

}  // namespace polyhead::py
