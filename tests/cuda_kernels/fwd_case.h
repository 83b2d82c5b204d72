// Self-contained helpers of the CUDA forward-kernel tests: a problem built on the GPU and its
// twin on the host, run by the cuda backend and by the fp64 reference, compared by relative
// L2 error (DESIGN.md section 6). Outputs are poisoned with NaN before every run.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/fwd/dispatch.h"
#include "polyhead/polyhead.h"

namespace polyhead::testing_cuda {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

inline bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device"

// The wgmma family's sm_90a code runs on compute capability 9.0 exactly.
inline bool device_is_sm90() {
  int major = 0, minor = 0;
  return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) == cudaSuccess &&
         major == 9 && minor == 0;
}

// Whether this build holds the configuration (POLYHEAD_CUDA_HEADDIMS/DTYPES/ARCHS trim the
// table) and, for the wgmma family, this device runs it.
inline bool config_compiled(DType dtype, int64_t dqk, int64_t dv,
                            cuda::FwdFamily family = cuda::FwdFamily::mma_sync) {
  const bool sm90 = family == cuda::FwdFamily::wgmma || family == cuda::FwdFamily::ws;
  if (sm90 && (dtype == DType::f32 || !device_is_sm90())) return false;
  const std::string dims =
      dqk == dv ? std::to_string(dqk) : "(" + std::to_string(dqk) + ", " + std::to_string(dv) + ")";
  const std::string dt = std::string(dtype_name(dtype)) + " ";
  const char* marker = family == cuda::FwdFamily::ws      ? "warp-specialized"
                       : family == cuda::FwdFamily::wgmma ? "wgmma"
                                                          : "mma.sync";
  for (const std::string& line : cuda::fwd_configurations()) {
    if (dtype == DType::f32) {  // one SIMT line lists every compiled pair
      if (line.rfind(dt, 0) == 0 && line.find(dims) != std::string::npos) return true;
    } else if (line.rfind(dt + dims + ":", 0) == 0 && line.find(marker) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// A mask from its text form, or nullopt when this build lacks the kind.
inline std::optional<MaskSpec> parse_if_built(const char* text) {
  try {
    return MaskSpec::parse(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// One randomized case. Everything a failure needs to be reproduced is printed by describe().
struct FwdCase {
  DType dtype = DType::bf16;
  DType o_dtype = DType::bf16;
  int64_t batch = 1, sq = 113, sk = 239, hq = 4, hkv = 2, dqk = 128, dv = 128;
  MaskSpec mask;
  float softcap = 0.0f;
  bool alibi = false, sinks = false, lse = true;
  std::optional<float> scale;
  std::vector<int32_t> varlen_q, varlen_k;  // sequence lengths (packed batch) when non-empty
  bool host_cu_seqlens = false;
  bool force_block_map = false;
  cuda::FwdFamily family = cuda::FwdFamily::automatic;
  int max_ctas = 0;         // persistent kernels: cap on CTAs (several work items per CTA)
  bool patch_order = true;  // neighborhood masks in patch order (FwdOverrides::patch_order)
  bool pack_gqa = true;     // decode: grouped heads as rows (FwdOverrides::pack_gqa)
  int kv_splits = 0;        // split-KV on the wgmma kernel (FwdOverrides::kv_splits)
  bool ws_persistent = cuda::FwdOverrides{}.ws_persistent;  // the ws kernel's persistent form
  bool ws_na_tiles = cuda::FwdOverrides{}.ws_na_tiles;      // its 64-key neighborhood tiles
  // Values written into v before the run: {batch, key token, kv head, column, value}. Where
  // the reference output is then non-finite the kernel must give the same class of value.
  struct Poke {
    int64_t b, t, h, d;
    float value;
  };
  std::vector<Poke> v_pokes;
  int64_t token_pad = 0;  // extra heads of padding in the token stride (strided views)
  int64_t o_offset = 0;   // O starts this many elements into its buffer (unaligned rows)
  uint64_t seed = 1;

  std::string describe() const {
    std::string s =
        std::string(dtype_name(dtype)) + "->" + std::string(dtype_name(o_dtype)) +
        " B=" + std::to_string(batch) + " Sq=" + std::to_string(sq) + " Sk=" + std::to_string(sk) +
        " H=" + std::to_string(hq) + "/" + std::to_string(hkv) + " D=" + std::to_string(dqk) + "/" +
        std::to_string(dv) + " mask=" + mask.to_string() + " softcap=" + std::to_string(softcap) +
        " alibi=" + std::to_string(alibi) + " sinks=" + std::to_string(sinks) +
        " lse=" + std::to_string(lse) + " map=" + std::to_string(force_block_map) +
        " family=" + std::to_string(int(family)) + " ctas=" + std::to_string(max_ctas) +
        " patch=" + std::to_string(patch_order) + " pack=" + std::to_string(pack_gqa) +
        " splits=" + std::to_string(kv_splits) + " persistent=" + std::to_string(ws_persistent) +
        " na_tiles=" + std::to_string(ws_na_tiles) + " pad=" + std::to_string(token_pad) +
        " o_offset=" + std::to_string(o_offset) + " seed=" + std::to_string(seed);
    if (scale) s += " scale=" + std::to_string(*scale);
    for (const Poke& pk : v_pokes) {
      s += " v[" + std::to_string(pk.b) + "," + std::to_string(pk.t) + "," + std::to_string(pk.h) +
           "," + std::to_string(pk.d) + "]=" + std::to_string(pk.value);
    }
    if (!varlen_q.empty()) {
      s += std::string(" varlen(") + (host_cu_seqlens ? "host" : "device") + ") q=[";
      for (auto x : varlen_q) s += std::to_string(x) + " ";
      s += "] k=[";
      for (auto x : varlen_k) s += std::to_string(x) + " ";
      s += "]";
    }
    return s;
  }
};

// Packed sequences of awkward lengths (one row, an empty sequence, one past a tile, keys
// shorter and longer than the queries, no keys) for the varlen tests of every family.
inline void awkward_varlen(FwdCase& c) {
  c.varlen_q = {1, 0, 200, 129, 7};
  c.varlen_k = {5, 3, 150, 300, 0};
}

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) {
    if (cudaMalloc(&ptr, n == 0 ? 1 : n) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

inline uint16_t to_bits(DType t, float x) {
  return t == DType::f16 ? float_to_half(x) : float_to_bf16(x);
}

// Host storage of one tensor in its dtype (raw bytes) plus fp64 readback.
struct HostTensor {
  DType dtype;
  std::vector<unsigned char> bytes;
  HostTensor(DType t, int64_t n) : dtype(t), bytes(size_t(n * dtype_size(t))) {}
  void set(int64_t i, float x) {
    if (dtype == DType::f32) {
      reinterpret_cast<float*>(bytes.data())[i] = x;
    } else if (dtype == DType::f64) {
      reinterpret_cast<double*>(bytes.data())[i] = x;
    } else {
      reinterpret_cast<uint16_t*>(bytes.data())[i] = to_bits(dtype, x);
    }
  }
  double get(int64_t i) const {
    switch (dtype) {
      case DType::f32:
        return reinterpret_cast<const float*>(bytes.data())[i];
      case DType::f64:
        return reinterpret_cast<const double*>(bytes.data())[i];
      case DType::f16:
        return half_to_float(reinterpret_cast<const uint16_t*>(bytes.data())[i]);
      default:
        return bf16_to_float(reinterpret_cast<const uint16_t*>(bytes.data())[i]);
    }
  }
  int64_t size() const { return int64_t(bytes.size()) / dtype_size(dtype); }
};

inline double tolerance(DType t) {
  return relative_l2_tolerance(t);
}

struct CompareResult {
  double o_err = 0, lse_err = 0;
  int64_t o_nan = 0, lse_mismatch = 0, o_nonfinite_mismatch = 0;
  int64_t outside_writes = 0;  // elements of O's buffer outside the view that changed
};

// Runs `c` on the GPU (stream `stream`) and on the reference; returns the errors.
inline CompareResult run_case(const FwdCase& c, cudaStream_t stream = nullptr) {
  CompareResult res;
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const bool varlen = !c.varlen_q.empty();
  const int64_t nseq = varlen ? int64_t(c.varlen_q.size()) : c.batch;
  int64_t tq = c.sq, tk = c.sk;
  std::vector<int32_t> cq(1, 0), ck(1, 0);
  if (varlen) {
    for (size_t b = 0; b < c.varlen_q.size(); ++b) {
      cq.push_back(cq.back() + c.varlen_q[b]);
      ck.push_back(ck.back() + c.varlen_k[b]);
    }
    tq = cq.back();
    tk = ck.back();
  }
  const int64_t B = varlen ? 1 : c.batch;
  // [B, S, H, D] with an optional padded token stride (a strided view of a wider tensor).
  const int64_t q_tok = (c.hq + c.token_pad) * c.dqk, k_tok = (c.hkv + c.token_pad) * c.dqk;
  const int64_t v_tok = (c.hkv + c.token_pad) * c.dv, o_tok = (c.hq + c.token_pad) * c.dv;
  HostTensor q(c.dtype, B * tq * q_tok), k(c.dtype, B * tk * k_tok), v(c.dtype, B * tk * v_tok);
  for (auto* t : {&q, &k, &v}) {
    for (int64_t i = 0; i < t->size(); ++i) t->set(i, normal(rng));
  }
  for (const FwdCase::Poke& pk : c.v_pokes) {
    v.set(((pk.b * tk + pk.t) * (c.hkv + c.token_pad) + pk.h) * c.dv + pk.d, pk.value);
  }
  std::vector<float> slopes(size_t(c.hq)), sinks(size_t(c.hq));
  for (int64_t h = 0; h < c.hq; ++h) {
    slopes[size_t(h)] = std::exp2(-8.0f * float(h + 1) / float(c.hq));
    sinks[size_t(h)] = normal(rng) + 1.0f;
  }

  auto view = [&](void* data, DType t, int64_t S, int64_t H, int64_t D, int64_t tok, Device dev) {
    return TensorView::strided(data, t, {B, S, H, D}, {S * tok, tok, D, 1}, dev);
  };
  const Device gpu{DeviceType::cuda, 0};
  DeviceBuffer dq(q.bytes.size()), dk(k.bytes.size()), dvb(v.bytes.size());
  const int64_t o_elems = B * tq * o_tok;
  DeviceBuffer dout(size_t((c.o_offset + o_elems) * dtype_size(c.o_dtype)));
  DeviceBuffer dlse(size_t(B * c.hq * tq) * sizeof(float));
  DeviceBuffer dslopes(slopes.size() * 4), dsinks(sinks.size() * 4);
  DeviceBuffer dcq(cq.size() * 4), dck(ck.size() * 4);
  EXPECT_EQ(cudaMemcpy(dq.ptr, q.bytes.data(), q.bytes.size(), cudaMemcpyHostToDevice), 0);
  EXPECT_EQ(cudaMemcpy(dk.ptr, k.bytes.data(), k.bytes.size(), cudaMemcpyHostToDevice), 0);
  EXPECT_EQ(cudaMemcpy(dvb.ptr, v.bytes.data(), v.bytes.size(), cudaMemcpyHostToDevice), 0);
  EXPECT_EQ(cudaMemcpy(dslopes.ptr, slopes.data(), slopes.size() * 4, cudaMemcpyHostToDevice), 0);
  EXPECT_EQ(cudaMemcpy(dsinks.ptr, sinks.data(), sinks.size() * 4, cudaMemcpyHostToDevice), 0);
  EXPECT_EQ(cudaMemcpy(dcq.ptr, cq.data(), cq.size() * 4, cudaMemcpyHostToDevice), 0);
  EXPECT_EQ(cudaMemcpy(dck.ptr, ck.data(), ck.size() * 4, cudaMemcpyHostToDevice), 0);
  // Poison: every element the kernel fails to write stays NaN and fails the comparison.
  EXPECT_EQ(cudaMemset(dout.ptr, 0xff, dout.bytes), 0);
  EXPECT_EQ(cudaMemset(dlse.ptr, 0xff, dlse.bytes), 0);

  AttentionProblem g;
  g.q = view(dq.ptr, c.dtype, tq, c.hq, c.dqk, q_tok, gpu);
  g.k = view(dk.ptr, c.dtype, tk, c.hkv, c.dqk, k_tok, gpu);
  g.v = view(dvb.ptr, c.dtype, tk, c.hkv, c.dv, v_tok, gpu);
  g.o = view(static_cast<unsigned char*>(dout.ptr) + c.o_offset * dtype_size(c.o_dtype), c.o_dtype,
             tq, c.hq, c.dv, o_tok, gpu);
  if (c.lse) g.lse = TensorView::contiguous(dlse.ptr, DType::f32, {B, c.hq, tq}, gpu);
  g.scale = c.scale;
  g.softcap = c.softcap;
  g.mask = c.mask;
  if (c.alibi) g.alibi_slopes = TensorView::contiguous(dslopes.ptr, DType::f32, {c.hq}, gpu);
  if (c.sinks) g.sinks = TensorView::contiguous(dsinks.ptr, DType::f32, {c.hq}, gpu);
  if (varlen) {
    if (c.host_cu_seqlens) {
      g.cu_seqlens_q = TensorView::contiguous(cq.data(), DType::i32, {nseq + 1});
      g.cu_seqlens_k = TensorView::contiguous(ck.data(), DType::i32, {nseq + 1});
    } else {
      g.cu_seqlens_q = TensorView::contiguous(dcq.ptr, DType::i32, {nseq + 1}, gpu);
      g.cu_seqlens_k = TensorView::contiguous(dck.ptr, DType::i32, {nseq + 1}, gpu);
    }
  }
  const ProblemShape shape = validate(g);
  const Status st = cuda::fwd_supports(g, shape);
  EXPECT_TRUE(st.ok) << st.reason;
  if (!st.ok) return res;
  cuda::fwd_run(g, shape, stream,
                {c.force_block_map, c.family, c.max_ctas, c.patch_order, c.pack_gqa, c.kv_splits,
                 c.ws_persistent, c.ws_na_tiles});
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);

  HostTensor whole(c.o_dtype, c.o_offset + o_elems);
  std::vector<float> lse(size_t(B * c.hq * tq));
  EXPECT_EQ(cudaMemcpy(whole.bytes.data(), dout.ptr, whole.bytes.size(), cudaMemcpyDeviceToHost),
            0);
  // The elements before the view and the padding heads keep the poison (all bits set).
  const size_t esz = size_t(dtype_size(c.o_dtype));
  auto poisoned = [&](int64_t e) {
    for (size_t b = 0; b < esz; ++b) {
      if (whole.bytes[size_t(e) * esz + b] != 0xff) return false;
    }
    return true;
  };
  for (int64_t e = 0; e < c.o_offset; ++e) res.outside_writes += !poisoned(e);
  for (int64_t t = 0; t < B * tq; ++t) {
    for (int64_t e = c.hq * c.dv; e < o_tok; ++e) {
      res.outside_writes += !poisoned(c.o_offset + t * o_tok + e);
    }
  }
  HostTensor out(c.o_dtype, o_elems);
  std::copy(whole.bytes.begin() + std::ptrdiff_t(size_t(c.o_offset) * esz), whole.bytes.end(),
            out.bytes.begin());
  EXPECT_EQ(cudaMemcpy(lse.data(), dlse.ptr, lse.size() * 4, cudaMemcpyDeviceToHost), 0);

  // The reference on host copies: same element values, fp64 outputs.
  HostTensor ref_o(DType::f64, B * tq * c.hq * c.dv);
  std::vector<double> ref_lse(size_t(B * c.hq * tq));
  AttentionProblem r = g;
  r.q = view(q.bytes.data(), c.dtype, tq, c.hq, c.dqk, q_tok, {});
  r.k = view(k.bytes.data(), c.dtype, tk, c.hkv, c.dqk, k_tok, {});
  r.v = view(v.bytes.data(), c.dtype, tk, c.hkv, c.dv, v_tok, {});
  r.o = TensorView::contiguous(ref_o.bytes.data(), DType::f64, {B, tq, c.hq, c.dv});
  r.lse = TensorView::contiguous(ref_lse.data(), DType::f64, {B, c.hq, tq});
  r.alibi_slopes.reset();
  r.sinks.reset();
  if (c.alibi) r.alibi_slopes = TensorView::contiguous(slopes.data(), DType::f32, {c.hq});
  if (c.sinks) r.sinks = TensorView::contiguous(sinks.data(), DType::f32, {c.hq});
  if (varlen) {
    r.cu_seqlens_q = TensorView::contiguous(cq.data(), DType::i32, {nseq + 1});
    r.cu_seqlens_k = TensorView::contiguous(ck.data(), DType::i32, {nseq + 1});
  }
  attention(r, {.backend = "reference"});

  double num = 0, den = 0, lnum = 0, lden = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < tq; ++i) {
      for (int64_t h = 0; h < c.hq; ++h) {
        for (int64_t d = 0; d < c.dv; ++d) {
          const double x = out.get(((b * tq + i) * (c.hq + c.token_pad) + h) * c.dv + d);
          const double y = ref_o.get(((b * tq + i) * c.hq + h) * c.dv + d);
          if (!std::isfinite(y)) {  // only from pokes: the same non-finite class
            if (!(std::isnan(x) && std::isnan(y)) && x != y) ++res.o_nonfinite_mismatch;
            continue;
          }
          if (std::isnan(x)) ++res.o_nan;
          num += (x - y) * (x - y);
          den += y * y;
        }
        if (!c.lse) continue;
        const double x = lse[size_t((b * c.hq + h) * tq + i)];
        const double y = ref_lse[size_t((b * c.hq + h) * tq + i)];
        if (std::isinf(y) || std::isinf(x) || std::isnan(x)) {
          if (x != y) ++res.lse_mismatch;
        } else {
          lnum += (x - y) * (x - y);
          lden += y * y;
        }
      }
    }
  }
  res.o_err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  res.lse_err = lden > 0 ? std::sqrt(lnum / lden) : std::sqrt(lnum);
  return res;
}

inline void expect_matches(const FwdCase& c, cudaStream_t stream = nullptr) {
  const CompareResult r = run_case(c, stream);
  const double tol = tolerance(c.dtype);
  EXPECT_EQ(r.o_nan, 0) << c.describe();
  EXPECT_EQ(r.outside_writes, 0) << c.describe();
  EXPECT_EQ(r.o_nonfinite_mismatch, 0) << c.describe();
  EXPECT_LE(r.o_err, tol) << c.describe();
  EXPECT_EQ(r.lse_mismatch, 0) << c.describe();
  EXPECT_LE(r.lse_err, c.dtype == DType::f32 ? 1e-5 : 1e-3) << c.describe();
}

}  // namespace polyhead::testing_cuda
