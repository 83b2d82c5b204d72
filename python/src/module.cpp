// The nanobind module polyhead._polyhead: thin bindings of the public C++ API. The package
// python/polyhead wraps it with the user-facing functions (argument checks, allocation).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "polyhead/attention.h"
#include "polyhead/error.h"

namespace nb = nanobind;

NB_MODULE(_polyhead, m) {
  m.doc() = "polyhead: multi-head attention on numpy and PyTorch arrays (C++ core)";
  // Masks are values users keep in module globals (CAUSAL = masks.causal()); such instances
  // outlive the module at interpreter exit, which is no leak worth a warning on every run.
  nb::set_leak_warnings(false);
  // Every refusal of the library (polyhead::Error) arrives as polyhead.Error, a RuntimeError.
  nb::exception<polyhead::Error>(m, "Error", PyExc_RuntimeError);

  nb::class_<polyhead::BackendInfo>(m, "BackendInfo")
      .def_ro("name", &polyhead::BackendInfo::name)
      .def_ro("available", &polyhead::BackendInfo::available)
      .def_ro("description", &polyhead::BackendInfo::description)
      .def("__repr__", [](const polyhead::BackendInfo& b) {
        return "BackendInfo(name='" + b.name + "', available=" + (b.available ? "True" : "False") +
               ", description='" + b.description + "')";
      });
  m.def("backends", &polyhead::backends, "Every backend compiled in, in the order 'auto' tries.");
  m.def("version", &polyhead::version);

  polyhead::py::bind_masks(m);
  polyhead::py::bind_problem(m);
  polyhead::py::bind_block_map(m);
  polyhead::py::bind_npy(m);
}
