// The parts of the nanobind module `polyhead._polyhead`, one file each.
#pragma once

#include <nanobind/nanobind.h>

#include <string_view>

#include "polyhead/mask.h"

namespace polyhead::py {

namespace nb = nanobind;

void bind_masks(nb::module_& m);      // masks.cpp: MaskSpec and the mask factories
void bind_problem(nb::module_& m);    // problem.cpp: Problem, attention, supports, counts
void bind_block_map(nb::module_& m);  // block_map.cpp: BlockMap
void bind_npy(nb::module_& m);        // npy.cpp: load_npy, save_npy

// None, a mask string (MaskSpec::parse) or a MaskSpec; nb::type_error naming `name` otherwise.
MaskSpec as_mask(nb::handle h, std::string_view name);

}  // namespace polyhead::py
