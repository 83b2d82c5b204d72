// polyhead.MaskSpec and the factories that need C++: masks holding arrays (block masks, top-k
// scores; the array is kept alive by the mask, not copied), one spec per head, and MoA's
// elastic windows. The text kinds are built by MaskSpec.parse (python/polyhead/masks.py).
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "polyhead/mask.h"
#include "tensors.h"

namespace polyhead::py {
namespace {

// A host array held by a mask: the view, and the array itself as the owner.
MaskTensor mask_tensor(const nb::ndarray<nb::ro>& a, std::string_view name, DType want,
                       std::string_view want_name) {
  MaskTensor t;
  t.view = view_of(a, name);
  if (t.view.device.type != DeviceType::cpu) {
    throw nb::value_error((std::string(name) + " is on " + to_string(t.view.device) +
                           "; masks read it on the host: pass a CPU array")
                              .c_str());
  }
  if (t.view.dtype != want) {
    throw nb::type_error((std::string(name) + " has dtype " +
                          std::string(dtype_name(t.view.dtype)) + "; expected " +
                          std::string(want_name))
                             .c_str());
  }
  t.owner = std::make_shared<nb::ndarray<>>(a);
  return t;
}

MaskSpec block_mask(const nb::ndarray<nb::ro>& bits, int64_t bq, int64_t bk) {
  BlockMask m;
  m.bits = mask_tensor(bits, "blocks: array", DType::u8, "bool or uint8");
  TensorView& v = m.bits.view;
  if (v.rank == 2) {  // [QB, KB]: one mask for every head, as MaskSpec::parse does
    v.rank = 3;
    v.shape = {1, v.shape[0], v.shape[1], 0};
    v.stride = {0, v.stride[0], v.stride[1], 0};
  }
  if (v.rank != 3) {
    throw nb::value_error(("blocks: array has " + std::to_string(v.rank) +
                           " dimensions; expected [H or 1, QB, KB] or [QB, KB]")
                              .c_str());
  }
  m.block_q = bq;
  m.block_k = bk;
  return MaskSpec(std::move(m));
}

MaskSpec topk_mask(const nb::ndarray<nb::ro>& scores, int64_t k, int64_t window) {
  TopKMask m;
  m.scores = mask_tensor(scores, "topk: scores", DType::f32, "float32");
  if (m.scores.view.rank != 2 && m.scores.view.rank != 3) {
    throw nb::value_error(("topk: scores have " + std::to_string(m.scores.view.rank) +
                           " dimensions; expected [Hkv, Sk] or [B, Hkv, Sk]")
                              .c_str());
  }
  m.k = k;
  m.window = window;
  return MaskSpec(std::move(m));
}

MaskSpec per_head(const std::vector<MaskSpec>& heads) {
  if (heads.empty()) throw nb::value_error("heads: the list of per-head specs is empty");
  for (size_t h = 0; h < heads.size(); ++h) {
    if (heads[h].get_if<PerHeadMask>() || heads[h].is_dynamic()) {
      throw nb::value_error(("heads[" + std::to_string(h) + "] = '" + heads[h].to_string() +
                             "' cannot be used per head (static kinds only: no nested heads, "
                             "no data-dependent masks)")
                                .c_str());
    }
  }
  return MaskSpec(PerHeadMask{heads});
}

// The grammar word of a spec: none, causal, window, na, s2, blocks, heads, longheads, ...
std::string kind_of(const MaskSpec& m) {
  const std::string text = m.to_string();
  return text.substr(0, text.find(':'));
}

}  // namespace

MaskSpec as_mask(nb::handle h, std::string_view name) {
  if (h.is_none()) return MaskSpec::none();
  if (nb::isinstance<nb::str>(h)) return MaskSpec::parse(nb::cast<std::string_view>(h));
  MaskSpec m;
  if (nb::try_cast<MaskSpec>(h, m)) return m;
  throw nb::type_error((std::string(name) + " must be None, a mask string such as 'causal' or " +
                        "a polyhead.MaskSpec, not " +
                        nb::cast<std::string>(nb::str(h.type().attr("__name__"))))
                           .c_str());
}

void bind_masks(nb::module_& m) {
  nb::class_<MaskSpec>(m, "MaskSpec",
                       "A mask: which (query, key) pairs each head sees. str() gives the text "
                       "form of the CLI's --mask; MaskSpec.parse reads it back.")
      .def(nb::init<>())
      .def_static(
          "parse", [](std::string_view text) { return MaskSpec::parse(text); }, nb::arg("text"),
          "Parses the text form (polyhead.Error naming the bad field if malformed).")
      .def("to_string", &MaskSpec::to_string)
      .def_prop_ro("kind", &kind_of, "The grammar word: none, causal, window, na, s2, ...")
      .def_prop_ro("is_dynamic", &MaskSpec::is_dynamic,
                   "Whether the mask selects keys from q and k (longheads, dhsa, topk).")
      .def_prop_ro(
          "heads",
          [](const MaskSpec& s) -> nb::object {
            if (const auto* p = s.get_if<PerHeadMask>()) return nb::cast(p->heads);
            return nb::none();
          },
          "The per-head specs of a 'heads' mask, else None.")
      .def("__str__", &MaskSpec::to_string)
      .def("__repr__", [](const MaskSpec& s) { return "MaskSpec('" + s.to_string() + "')"; })
      .def("__eq__",
           [](const MaskSpec& a, nb::handle b) {
             MaskSpec other;
             return nb::try_cast<MaskSpec>(b, other) && a == other;
           })
      .def("__hash__", [](const MaskSpec& s) { return nb::hash(nb::str(s.to_string().c_str())); });

  m.def("_block_mask", &block_mask, nb::arg("bits"), nb::arg("bq"), nb::arg("bk"));
  m.def("_topk_mask", &topk_mask, nb::arg("scores"), nb::arg("k"), nb::arg("window"));
  m.def("_per_head", &per_head, nb::arg("heads"));
  m.def("moa_heads", &moa_heads, nb::arg("alpha"), nb::arg("beta"), nb::arg("n_total"),
        nb::arg("sink") = 64, nb::arg("min_cache") = 128, nb::arg("split") = 64,
        "MoA's elastic per-head causal windows with sinks (one window per head).");
}

}  // namespace polyhead::py
