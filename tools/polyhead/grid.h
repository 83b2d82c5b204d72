// Benchmark grids as data (bench/grids/*.json, format in bench/grids/README.md): the presets are
// those files compiled into the program; `polyhead bench --grid FILE` reads any other.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cases.h"
#include "json.h"

namespace polyhead::cli {

struct BenchGrid {
  std::string name;
  std::string description;
  std::string source;  // "preset quick" or the file path
  uint64_t seed = 42;
  std::vector<CaseSpec> cases;
};

// The built-in presets, in the order `--help` lists them.
inline constexpr std::string_view kGridPresets[] = {"quick",      "default", "cpu-full",
                                                    "cpu-sparse", "gpu",     "full"};

// Expands a grid document into its cases; throws UsageError naming the file and line of what is
// wrong (unknown keys, patterns or parameters, duplicate case names, misfit patterns).
BenchGrid expand_grid(const Json& doc, const std::string& source);
BenchGrid load_grid_file(const std::string& path);
BenchGrid load_grid_preset(std::string_view name);

// The text of a built-in preset (generated from bench/grids/ at build time), or empty.
std::string_view builtin_grid_text(std::string_view name);

}  // namespace polyhead::cli
