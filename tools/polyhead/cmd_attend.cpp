// polyhead attend: one forward pass over .npy files.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "device.h"
#include "host_tensor.h"
#include "polyhead/attention.h"
#include "polyhead/mask.h"
#include "polyhead/npy.h"

namespace polyhead::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: polyhead attend --q Q.npy --k K.npy --v V.npy --out O.npy [options]

Runs the attention forward pass of DESIGN.md section 2 on NumPy arrays.
  q [B, Sq, Hq, Dqk], k [B, Sk, Hkv, Dqk], v [B, Sk, Hkv, Dv]  float16, float32 or float64,
  C or Fortran order; with --cu-seqlens-* also [total, H, D] (a packed batch, B = 1).
  The output o is float32 [B, Sq, Hq, Dv] ([total, Hq, Dv] for 3-D inputs).

options:
  --lse FILE             also write the log-sum-exp, float32 [B, Hq, Sq] ([Hq, total] for 3-D)
  --mask SPEC            a mask in MaskSpec's text grammar (MaskSpec::parse, README "Masks"),
                         e.g. causal, causal:topleft, window:255,0 (-1 = unbounded side);
                         default none
  --scale X              softmax scale (default Dqk^-0.5)
  --softcap X            logit soft-cap c: s = c * tanh(s / c) (default 0 = off)
  --alibi FILE           ALiBi slopes, [Hq]
  --sinks FILE           learned sink logits, [Hq]
  --cu-seqlens-q FILE    int32 or int64 [nseq + 1] offsets of a packed batch (with -k)
  --cu-seqlens-k FILE
  --dtype T              fp32 | fp16 | bf16: round q, k, v to T and compute in T
                         (default fp16 for float16 files, fp32 otherwise)
  --backend NAME         auto | reference | cpu | cuda (default auto; cuda copies the
                         inputs to GPU 0 and the outputs back)
  --threads N            cpu threads (default: OpenMP's default)
)";

constexpr OptionDef kOptions[] = {
    {"q"},     {"k"},       {"v"},       {"out"},   {"lse"},          {"mask"},
    {"scale"}, {"softcap"}, {"alibi"},   {"sinks"}, {"cu-seqlens-q"}, {"cu-seqlens-k"},
    {"dtype"}, {"backend"}, {"threads"},
};

std::string required(const Args& args, std::string_view name) {
  auto v = args.get(name);
  if (!v) throw UsageError("missing --" + std::string(name) + " (see 'polyhead attend --help')");
  return *v;
}

std::string dims(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d) s += ", ";
    s += std::to_string(shape[d]);
  }
  return s + "]";
}

std::string describe(const NpyArray& a) {
  return std::string(dtype_name(a.dtype)) + " " + dims(a.shape);
}

bool is_float_file(const NpyArray& a) {
  return a.dtype == DType::f32 || a.dtype == DType::f64 || a.dtype == DType::f16;
}

// Element i (C order) of a float or int32 array.
double element(const NpyArray& a, int64_t i) {
  const uint8_t* p = a.data->data();
  switch (a.dtype) {
    case DType::f16:
      return half_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
    case DType::f32:
      return reinterpret_cast<const float*>(p)[i];
    case DType::f64:
      return reinterpret_cast<const double*>(p)[i];
    case DType::i32:
      return reinterpret_cast<const int32_t*>(p)[i];
    default:
      return p[i];
  }
}

HostTensor to_tensor(const NpyArray& a, DType dtype, std::vector<int64_t> shape) {
  HostTensor t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, element(a, i));
  return t;
}

// q, k or v: a float array of rank 4, or rank 3 [total, H, D] in a packed batch.
NpyArray read_qkv(const std::string& path, std::string_view name, bool packed) {
  NpyArray a = load_npy(path);
  if (!is_float_file(a)) {
    throw UsageError(std::string(name) + " '" + path + "': " + describe(a) +
                     " is not a float array (float16, float32, float64)");
  }
  if (a.shape.size() != 4 && !(packed && a.shape.size() == 3)) {
    throw UsageError(std::string(name) + " '" + path + "': " + describe(a) + " has " +
                     std::to_string(a.shape.size()) + " dimensions; expected 4 [B, S, H, D]" +
                     (packed ? " or 3 [total, H, D]" : " (or 3 with --cu-seqlens-q/k)"));
  }
  return a;
}

// [B, S, H, D] of a rank-4 array, [1, total, H, D] of a packed rank-3 one.
std::vector<int64_t> as_4d(std::vector<int64_t> shape) {
  if (shape.size() == 3) shape.insert(shape.begin(), 1);
  return shape;
}

// A per-head float vector (ALiBi slopes, sinks), as f32 [Hq].
HostTensor read_head_vector(const std::string& path, std::string_view name) {
  const NpyArray a = load_npy(path);
  if (!is_float_file(a) || a.shape.size() != 1) {
    throw UsageError(std::string(name) + " '" + path + "': " + describe(a) +
                     "; expected a 1-D float array [Hq]");
  }
  return to_tensor(a, DType::f32, a.shape);
}

// int32 [nseq + 1] (int64 files are narrowed by load_npy, which checks the range).
HostTensor read_cu_seqlens(const std::string& path, std::string_view name) {
  const NpyArray a = load_npy(path);
  if (a.dtype != DType::i32 || a.shape.size() != 1) {
    throw UsageError(std::string(name) + " '" + path + "': " + describe(a) +
                     "; expected a 1-D int32 or int64 array [nseq + 1]");
  }
  return to_tensor(a, DType::i32, a.shape);
}

// Drops the leading batch dimension of 1 (packed outputs mirror packed inputs).
TensorView drop_batch(TensorView t) {
  for (int d = 0; d + 1 < t.rank; ++d) {
    t.shape[size_t(d)] = t.shape[size_t(d) + 1];
    t.stride[size_t(d)] = t.stride[size_t(d) + 1];
  }
  --t.rank;
  return t;
}

}  // namespace

int cmd_attend(Words words) {
  const Args args = Args::parse(words, kOptions);
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::string q_path = required(args, "q"), k_path = required(args, "k"),
                    v_path = required(args, "v"), out_path = required(args, "out");
  const bool packed = args.has("cu-seqlens-q") || args.has("cu-seqlens-k");
  constexpr std::string_view kDTypes[] = {"fp32", "fp16", "bf16"};
  const std::optional<std::string> dtype_arg =
      args.has("dtype") ? std::optional(args.choice("dtype", "", kDTypes)) : std::nullopt;

  AttentionProblem p;
  p.mask = MaskSpec::parse(args.str("mask", "none"));
  if (const auto x = args.number("scale")) p.scale = float(*x);
  if (const auto x = args.number("softcap")) p.softcap = float(*x);
  RunOptions options;
  options.backend = args.str("backend", "auto");
  options.num_threads = int(args.integer("threads", 0, 1, 4096));

  const NpyArray q = read_qkv(q_path, "q", packed);
  const NpyArray k = read_qkv(k_path, "k", packed);
  const NpyArray v = read_qkv(v_path, "v", packed);
  const bool three_d = q.shape.size() == 3;
  DType dtype = q.dtype == DType::f16 && k.dtype == DType::f16 && v.dtype == DType::f16
                    ? DType::f16
                    : DType::f32;
  if (dtype_arg) {
    dtype = *dtype_arg == "fp16" ? DType::f16 : *dtype_arg == "bf16" ? DType::bf16 : DType::f32;
  }

  // [B, Sq, Hq, Dqk], [B, Sk, Hkv, Dqk], [B, Sk, Hkv, Dv], rounded to the compute dtype.
  const HostTensor tq = to_tensor(q, dtype, as_4d(q.shape));
  const HostTensor tk = to_tensor(k, dtype, as_4d(k.shape));
  const HostTensor tv = to_tensor(v, dtype, as_4d(v.shape));
  // Shapes are the library's to check; o takes q's [B, Sq, Hq] and v's Dv.
  const std::vector<int64_t>& qs = tq.shape();
  HostTensor o(DType::f32, {qs[0], qs[1], qs[2], tv.shape()[3]});  // [B, Sq, Hq, Dv]
  std::optional<HostTensor> lse;                                   // [B, Hq, Sq]
  if (args.has("lse")) lse.emplace(DType::f32, std::vector<int64_t>{qs[0], qs[2], qs[1]});
  std::optional<HostTensor> alibi, sinks, cu_q, cu_k;
  if (args.has("alibi")) alibi = read_head_vector(*args.get("alibi"), "alibi");
  if (args.has("sinks")) sinks = read_head_vector(*args.get("sinks"), "sinks");
  if (args.has("cu-seqlens-q")) cu_q = read_cu_seqlens(*args.get("cu-seqlens-q"), "cu_seqlens_q");
  if (args.has("cu-seqlens-k")) cu_k = read_cu_seqlens(*args.get("cu-seqlens-k"), "cu_seqlens_k");

  p.q = tq.view();
  p.k = tk.view();
  p.v = tv.view();
  p.o = o.view();
  if (lse) p.lse = lse->view();
  if (alibi) p.alibi_slopes = alibi->view();
  if (sinks) p.sinks = sinks->view();
  if (cu_q) p.cu_seqlens_q = cu_q->view();
  if (cu_k) p.cu_seqlens_k = cu_k->view();

  const std::string backend = options.backend == "auto" ? choose_backend(p) : options.backend;
  if (backend_needs_device(backend)) {
    // The files are on the host; a GPU backend gets device copies and returns o and lse.
    const DeviceMirror device(p);
    attention(device.problem(), options);
    device.copy_outputs_back(p);
  } else {
    attention(p, options);
  }

  // Packed (3-D) inputs give packed outputs: o [total, Hq, Dv], lse [Hq, total].
  save_npy(out_path, three_d ? drop_batch(o.view()) : o.view());
  if (lse) save_npy(*args.get("lse"), three_d ? drop_batch(lse->view()) : lse->view());
  std::printf("attend: backend %s, %s, q %s, k %s, v %s, mask %s -> %s\n", backend.c_str(),
              std::string(dtype_name(dtype)).c_str(), dims(q.shape).c_str(), dims(k.shape).c_str(),
              dims(v.shape).c_str(), p.mask.to_string().c_str(), out_path.c_str());
  return 0;
}

}  // namespace polyhead::cli
