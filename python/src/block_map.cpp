// polyhead.BlockMap: a mask compiled for one tile shape, with the element rule and the tile
// lists kernels iterate. Indices are checked here (the C++ accessors do not check them).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "polyhead/block_map.h"
#include "tensors.h"

namespace polyhead::py {
namespace {

// A new numpy array of `shape` that owns its memory; `*data` receives the pointer.
template <typename T>
nb::ndarray<nb::numpy, T> new_array(std::initializer_list<size_t> shape, T** data) {
  size_t n = 1;
  for (size_t s : shape) n *= s;
  T* p = new T[std::max<size_t>(n, 1)]();
  nb::capsule owner(p, [](void* ptr) noexcept { delete[] static_cast<T*>(ptr); });
  *data = p;
  return nb::ndarray<nb::numpy, T>(p, shape, owner);
}

void check_index(std::string_view what, int64_t value, int64_t bound) {
  if (value < 0 || value >= bound) {
    throw nb::index_error((std::string(what) + " = " + std::to_string(value) +
                           " is out of range [0, " + std::to_string(bound) + ")")
                              .c_str());
  }
}

// Host view of a MaskInputs tensor ([S, H, D] of one sequence).
TensorView input_view(const nb::ndarray<nb::ro>& a, std::string_view name) {
  TensorView v = view_of(a, name);
  if (v.device.type != DeviceType::cpu || v.rank != 3) {
    throw nb::value_error(
        (std::string(name) + " must be a host array [S, H, D], not " + v.describe()).c_str());
  }
  return v;
}

BlockMap compile(nb::handle mask, int64_t seqlen_q, int64_t seqlen_k, int64_t heads_q,
                 int64_t heads_kv, std::pair<int64_t, int64_t> tile,
                 const std::optional<nb::ndarray<nb::ro>>& q,
                 const std::optional<nb::ndarray<nb::ro>>& k, int64_t batch, int64_t k_start) {
  const MaskSpec spec = as_mask(mask, "mask");
  const MaskGeometry geometry{seqlen_q, seqlen_k, heads_q, heads_kv};
  const TileShape shape{tile.first, tile.second};
  if (!spec.is_dynamic()) {
    nb::gil_scoped_release release;
    return BlockMap::compile(spec, geometry, shape);
  }
  if (!q || !k) {
    throw nb::value_error(("mask '" + spec.to_string() +
                           "' selects keys from the data: pass q [Sq, Hq, Dqk] and "
                           "k [Sk, Hkv, Dqk] of the sequence")
                              .c_str());
  }
  MaskInputs inputs{input_view(*q, "q"), input_view(*k, "k"), batch, k_start};
  nb::gil_scoped_release release;
  return BlockMap::compile(spec, geometry, shape, &inputs);
}

nb::list row(const BlockMap& map, int64_t head, int64_t q_tile) {
  check_index("head", head, map.geometry().heads_q);
  check_index("q_tile", q_tile, map.q_tiles());
  std::vector<KeyTile> tiles;
  map.row(head, q_tile, tiles);
  nb::list out;
  for (const KeyTile& t : tiles) out.append(nb::make_tuple(t.index, t.full));
  return out;
}

// [q_tiles, k_tiles] int8: 0 = skipped, 1 = partial, 2 = full.
nb::ndarray<nb::numpy, int8_t> tiles(const BlockMap& map, int64_t head) {
  check_index("head", head, map.geometry().heads_q);
  int8_t* p = nullptr;
  const int64_t qt = map.q_tiles(), kt = map.k_tiles();
  auto out = new_array<int8_t>({size_t(qt), size_t(kt)}, &p);
  std::vector<KeyTile> row;
  for (int64_t r = 0; r < qt; ++r) {
    map.row(head, r, row);
    for (const KeyTile& t : row) p[r * kt + t.index] = t.full ? 2 : 1;
  }
  return out;
}

nb::ndarray<nb::numpy, bool> allowed_row(const BlockMap& map, int64_t head, int64_t i, int64_t j0,
                                         std::optional<int64_t> count) {
  const MaskGeometry& g = map.geometry();
  check_index("head", head, g.heads_q);
  check_index("i", i, g.seqlen_q);
  const int64_t n = count.value_or(g.seqlen_k - j0);
  if (j0 < 0 || n < 0 || j0 + n > g.seqlen_k) {
    throw nb::index_error(("keys [" + std::to_string(j0) + ", " + std::to_string(j0 + n) +
                           ") are out of range [0, " + std::to_string(g.seqlen_k) + ")")
                              .c_str());
  }
  bool* p = nullptr;
  auto out = new_array<bool>({size_t(n)}, &p);
  if (n > 0) map.allowed_row(head, i, j0, n, reinterpret_cast<uint8_t*>(p));
  return out;
}

// The dense [Sq, Sk] boolean mask of one head.
nb::ndarray<nb::numpy, bool> dense(const BlockMap& map, int64_t head) {
  const MaskGeometry& g = map.geometry();
  check_index("head", head, g.heads_q);
  bool* p = nullptr;
  auto out = new_array<bool>({size_t(g.seqlen_q), size_t(g.seqlen_k)}, &p);
  for (int64_t i = 0; i < g.seqlen_q; ++i) {
    map.allowed_row(head, i, 0, g.seqlen_k, reinterpret_cast<uint8_t*>(p + i * g.seqlen_k));
  }
  return out;
}

std::string describe(const BlockMap& map) {
  const MaskGeometry& g = map.geometry();
  return "BlockMap(seqlen_q=" + std::to_string(g.seqlen_q) +
         ", seqlen_k=" + std::to_string(g.seqlen_k) + ", heads_q=" + std::to_string(g.heads_q) +
         ", heads_kv=" + std::to_string(g.heads_kv) + ", tile=" + std::to_string(map.tile().m) +
         "x" + std::to_string(map.tile().n) +
         ", visited_tiles=" + std::to_string(map.visited_tiles()) +
         ", full_tiles=" + std::to_string(map.full_tiles()) + ")";
}

}  // namespace

void bind_block_map(nb::module_& m) {
  nb::class_<BlockMap>(m, "BlockMap",
                       "A mask compiled for one tile shape: for each (query head, query tile) "
                       "the key tiles to visit, each full (no masking work) or partial.")
      .def_static("compile", &compile, nb::arg("mask"), nb::arg("seqlen_q"), nb::arg("seqlen_k"),
                  nb::arg("heads_q") = 1, nb::arg("heads_kv") = 1,
                  nb::arg("tile") = std::pair<int64_t, int64_t>{64, 64}, nb::arg("q") = nb::none(),
                  nb::arg("k") = nb::none(), nb::arg("batch") = 0, nb::arg("k_start") = 0,
                  "Compiles `mask` (a MaskSpec or its text) for one sequence. Data-dependent "
                  "masks (longheads, dhsa, topk) select here from the host arrays q [Sq, Hq, "
                  "Dqk] and k [Sk, Hkv, Dqk].")
      .def_prop_ro("seqlen_q", [](const BlockMap& b) { return b.geometry().seqlen_q; })
      .def_prop_ro("seqlen_k", [](const BlockMap& b) { return b.geometry().seqlen_k; })
      .def_prop_ro("heads_q", [](const BlockMap& b) { return b.geometry().heads_q; })
      .def_prop_ro("heads_kv", [](const BlockMap& b) { return b.geometry().heads_kv; })
      .def_prop_ro("tile", [](const BlockMap& b) { return std::make_pair(b.tile().m, b.tile().n); })
      .def_prop_ro("q_tiles", &BlockMap::q_tiles)
      .def_prop_ro("k_tiles", &BlockMap::k_tiles)
      .def("row", &row, nb::arg("head"), nb::arg("q_tile"),
           "The key tiles query tile `q_tile` of `head` visits: [(index, full), ...] ascending.")
      .def("tiles", &tiles, nb::arg("head") = 0,
           "int8 [q_tiles, k_tiles] of one head: 0 skipped, 1 partial, 2 full.")
      .def(
          "allowed",
          [](const BlockMap& b, int64_t head, int64_t i, int64_t j) {
            check_index("head", head, b.geometry().heads_q);
            check_index("i", i, b.geometry().seqlen_q);
            check_index("j", j, b.geometry().seqlen_k);
            return b.allowed(head, i, j);
          },
          nb::arg("head"), nb::arg("i"), nb::arg("j"), "May query row i of `head` see key j?")
      .def("allowed_row", &allowed_row, nb::arg("head"), nb::arg("i"), nb::arg("j0") = 0,
           nb::arg("count") = nb::none(), "allowed(head, i, j0 + t) for t < count, as bool.")
      .def("dense", &dense, nb::arg("head") = 0, "The bool [Sq, Sk] mask of one head.")
      .def("visited_tiles", &BlockMap::visited_tiles)
      .def("full_tiles", &BlockMap::full_tiles)
      .def("pair_count", &BlockMap::pair_count,
           "Visible (head, i, j) triples summed over query heads.")
      .def("__repr__", &describe);
}

}  // namespace polyhead::py
