// The attention problem as the Python package builds it (slot by slot, from arrays or from
// shapes), and the library calls on it: attention, supports, choose_backend, validate, pair
// and FLOP counts. The package (python/polyhead/_api.py) checks types and allocates outputs first.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <optional>
#include <string>

#include "bindings.h"
#include "polyhead/attention.h"
#include "polyhead/problem.h"
#include "tensors.h"

namespace polyhead::py {
namespace {

enum Slot : int { kQ, kK, kV, kO, kLse, kCuQ, kCuK, kAlibi, kSinks, kSlots };
constexpr std::array<std::string_view, kSlots> kSlotNames = {
    "q", "k", "v", "o", "lse", "cu_seqlens_q", "cu_seqlens_k", "alibi_slopes", "sinks"};

Slot slot_of(std::string_view name) {
  for (int s = 0; s < kSlots; ++s) {
    if (kSlotNames[size_t(s)] == name) return Slot(s);
  }
  throw nb::key_error(("no tensor slot '" + std::string(name) + "'").c_str());
}

// An AttentionProblem plus the arrays its views point into, kept alive as long as it is.
class Problem {
 public:
  void set_input(std::string_view name, const nb::ndarray<nb::ro>& a) {
    const Slot s = slot_of(name);
    if (s == kO || s == kLse) {
      throw nb::value_error(("'" + std::string(name) + "' is an output").c_str());
    }
    assign(s, view_of(a, name), nb::ndarray<>(a));
  }
  void set_output(std::string_view name, const nb::ndarray<>& a) {
    const Slot s = slot_of(name);
    if (s != kO && s != kLse) {
      throw nb::value_error(("'" + std::string(name) + "' is an input").c_str());
    }
    assign(s, view_of(a, name), a);
  }
  void set_placeholder(std::string_view name, const std::vector<int64_t>& shape,
                       std::string_view dtype, std::string_view device) {
    const Slot s = slot_of(name);
    assign(
        s,
        placeholder(shape, dtype_from_name(dtype, name), device_from_name(device, name), s, name),
        {});
    placeholders_[size_t(s)] = true;
  }
  void clear(std::string_view name) {
    const Slot s = slot_of(name);
    if (s <= kO) throw nb::value_error(("'" + std::string(name) + "' is required").c_str());
    optional_slot(s)->reset();
    keep_[size_t(s)] = {};
    placeholders_[size_t(s)] = false;
  }

  bool has_placeholders() const {
    for (bool is_placeholder : placeholders_) {
      if (is_placeholder) return true;
    }
    return false;
  }
  // Whether a data-dependent mask would read a placeholder (it selects keys from q and k).
  bool mask_reads_placeholder() const {
    return p.mask.is_dynamic() && (placeholders_[kQ] || placeholders_[kK]);
  }
  std::string describe() const {
    std::string s = "Problem(";
    for (int i = 0; i < kSlots; ++i) {
      const TensorView* v = view(Slot(i));
      if (v == nullptr) continue;
      if (i) s += ", ";
      s += std::string(kSlotNames[size_t(i)]) + "=" + v->describe();
      if (placeholders_[size_t(i)]) s += " (shape only)";
    }
    s += ", mask=" + p.mask.to_string() + ")";
    return s;
  }

  AttentionProblem p;

 private:
  std::optional<TensorView>* optional_slot(Slot s) {
    switch (s) {
      case kLse:
        return &p.lse;
      case kCuQ:
        return &p.cu_seqlens_q;
      case kCuK:
        return &p.cu_seqlens_k;
      case kAlibi:
        return &p.alibi_slopes;
      case kSinks:
        return &p.sinks;
      default:
        return nullptr;
    }
  }
  const TensorView* view(Slot s) const {
    switch (s) {
      case kQ:
        return &p.q;
      case kK:
        return &p.k;
      case kV:
        return &p.v;
      case kO:
        return &p.o;
      default:
        break;
    }
    const auto* o = const_cast<Problem*>(this)->optional_slot(s);
    return o->has_value() ? &o->value() : nullptr;
  }
  void assign(Slot s, const TensorView& v, nb::ndarray<> owner) {
    switch (s) {
      case kQ:
        p.q = v;
        break;
      case kK:
        p.k = v;
        break;
      case kV:
        p.v = v;
        break;
      case kO:
        p.o = v;
        break;
      default:
        *optional_slot(s) = v;
        break;
    }
    keep_[size_t(s)] = std::move(owner);
    placeholders_[size_t(s)] = false;
  }

  std::array<nb::ndarray<>, kSlots> keep_;
  std::array<bool, kSlots> placeholders_{};
};

void require_arrays(const Problem& pr) {
  if (pr.has_placeholders()) throw nb::value_error("attention needs arrays, not shapes");
}

void require_mask_data(const Problem& pr) {
  if (pr.mask_reads_placeholder()) {
    throw nb::value_error(("mask '" + pr.p.mask.to_string() +
                           "' selects keys from the data: pass q and k as arrays, not shapes")
                              .c_str());
  }
}

}  // namespace

void bind_problem(nb::module_& m) {
  nb::class_<Problem>(m, "Problem",
                      "An attention problem under construction (internal: polyhead.attention, "
                      "supports, ... build one from their arguments).")
      .def(nb::init<>())
      .def("set_input", &Problem::set_input, nb::arg("name"), nb::arg("array"))
      .def("set_output", &Problem::set_output, nb::arg("name"), nb::arg("array"))
      .def("set_placeholder", &Problem::set_placeholder, nb::arg("name"), nb::arg("shape"),
           nb::arg("dtype"), nb::arg("device"))
      .def("clear", &Problem::clear, nb::arg("name"))
      .def_prop_rw(
          "scale", [](const Problem& pr) { return pr.p.scale; },
          [](Problem& pr, std::optional<float> s) { pr.p.scale = s; }, nb::arg("value").none())
      .def_prop_rw(
          "softcap", [](const Problem& pr) { return pr.p.softcap; },
          [](Problem& pr, float c) { pr.p.softcap = c; })
      .def_prop_rw(
          "mask", [](const Problem& pr) { return pr.p.mask; },
          [](Problem& pr, const MaskSpec& spec) { pr.p.mask = spec; })
      .def_prop_ro("has_placeholders", &Problem::has_placeholders)
      .def("__repr__", &Problem::describe);

  m.def(
      "attention",
      [](const Problem& pr, const std::string& backend, uintptr_t stream, int num_threads) {
        require_arrays(pr);
        RunOptions options;
        options.backend = backend;
        options.stream = reinterpret_cast<void*>(stream);
        options.num_threads = num_threads;
        nb::gil_scoped_release release;  // the arrays stay alive: `pr` holds them
        attention(pr.p, options);
      },
      nb::arg("problem"), nb::arg("backend") = "auto", nb::arg("stream") = 0,
      nb::arg("num_threads") = 0,
      "Runs the forward pass on `stream` (a cudaStream_t as an integer; 0 = default stream).");
  m.def(
      "supports",
      [](const Problem& pr, const std::string& backend) {
        require_mask_data(pr);
        Status s;
        {
          nb::gil_scoped_release release;
          s = supports(pr.p, backend);
        }
        return std::pair<bool, std::string>(s.ok, s.reason);
      },
      nb::arg("problem"), nb::arg("backend"));
  m.def(
      "choose_backend",
      [](const Problem& pr) {
        require_mask_data(pr);
        return choose_backend(pr.p);
      },
      nb::arg("problem"));
  m.def(
      "validate",
      [](const Problem& pr) {
        const ProblemShape s = validate(pr.p);
        nb::dict d;
        d["batch"] = s.batch;
        d["seqlen_q"] = s.seqlen_q;
        d["seqlen_k"] = s.seqlen_k;
        d["heads_q"] = s.heads_q;
        d["heads_kv"] = s.heads_kv;
        d["head_dim_qk"] = s.head_dim_qk;
        d["head_dim_v"] = s.head_dim_v;
        d["varlen"] = s.varlen;
        d["scale"] = s.scale;
        return d;
      },
      nb::arg("problem"), "The resolved sizes of a valid problem; polyhead.Error otherwise.");
  m.def(
      "unmasked_pairs",
      [](const Problem& pr) {
        require_mask_data(pr);
        nb::gil_scoped_release release;
        return unmasked_pairs(pr.p);
      },
      nb::arg("problem"));
  m.def(
      "forward_flops",
      [](const Problem& pr) {
        require_mask_data(pr);
        nb::gil_scoped_release release;
        return forward_flops(pr.p);
      },
      nb::arg("problem"));
}

}  // namespace polyhead::py
