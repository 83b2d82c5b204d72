// Boundary validation of an AttentionProblem (DESIGN.md section 5): every check names the
// argument, the value found and what is allowed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/mask_rule.h"
#include "polyhead/error.h"
#include "polyhead/problem.h"

namespace polyhead {
namespace {

struct Extent {
  uintptr_t begin = 0, end = 0;  // byte range [begin, end)
};

std::string dims(const TensorView& t) {
  std::string s = "[";
  for (int d = 0; d < t.rank; ++d) {
    if (d) s += ", ";
    s += std::to_string(t.shape[d]);
  }
  return s + "]";
}

// Checks rank, sizes, pointer and byte extent of one tensor argument.
Extent check_tensor(const TensorView& t, std::string_view name, int rank, std::string_view layout) {
  POLYHEAD_CHECK(t.rank == rank, name, " has rank ", t.rank, " ", dims(t), "; expected rank ", rank,
                 " ", layout);
  for (int d = 0; d < rank; ++d) {
    POLYHEAD_CHECK(t.shape[d] >= 1, name, ".shape[", d, "] = ", t.shape[d], " in ", dims(t),
                   ": every dimension of ", layout, " must be >= 1");
  }
  POLYHEAD_CHECK(t.data != nullptr, name, " has a null data pointer");
  const int64_t esize = dtype_size(t.dtype);
  POLYHEAD_CHECK(reinterpret_cast<uintptr_t>(t.data) % uintptr_t(esize) == 0, name,
                 " data pointer ", t.data, " is not aligned to its element size ", esize, " (",
                 dtype_name(t.dtype), ")");
  int64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    POLYHEAD_CHECK(!__builtin_mul_overflow(count, t.shape[d], &count), name, " has ", dims(t),
                   " elements, a count that overflows int64");
  }
  // Byte extent: the lowest and highest addressed elements.
  int64_t lo = 0, hi = 0;
  for (int d = 0; d < rank; ++d) {
    int64_t span = 0;
    POLYHEAD_CHECK(!__builtin_mul_overflow(t.shape[d] - 1, t.stride[d], &span), name,
                   " strides overflow int64: ", t.describe());
    if (span < 0) {
      POLYHEAD_CHECK(!__builtin_add_overflow(lo, span, &lo), name, " strides overflow int64");
    } else {
      POLYHEAD_CHECK(!__builtin_add_overflow(hi, span, &hi), name, " strides overflow int64");
    }
  }
  int64_t lo_bytes = 0, hi_bytes = 0;
  POLYHEAD_CHECK(!__builtin_mul_overflow(lo, esize, &lo_bytes) &&
                     !__builtin_mul_overflow(hi + 1, esize, &hi_bytes),
                 name, " byte extent overflows int64: ", t.describe());
  const auto base = reinterpret_cast<uintptr_t>(t.data);
  return {base + uintptr_t(lo_bytes), base + uintptr_t(hi_bytes)};
}

// Outputs must not write one element twice: sorted by stride, every stride must step past
// the whole extent of the smaller dimensions.
void check_no_self_overlap(const TensorView& t, std::string_view name) {
  std::vector<std::pair<int64_t, int64_t>> dims_by_stride;  // (|stride|, size)
  for (int d = 0; d < t.rank; ++d) {
    if (t.shape[d] > 1) dims_by_stride.push_back({std::abs(t.stride[d]), t.shape[d]});
  }
  std::sort(dims_by_stride.begin(), dims_by_stride.end());
  int64_t reach = 1;  // elements spanned by the dimensions seen so far
  for (auto [stride, size] : dims_by_stride) {
    POLYHEAD_CHECK(stride >= reach, name, " overlaps itself (stride ", stride,
                   " is smaller than the extent ", reach,
                   " of its inner dimensions): ", t.describe(),
                   "; outputs need non-overlapping strides");
    reach = stride * size;
  }
}

void check_disjoint(const Extent& a, std::string_view an, const Extent& b, std::string_view bn) {
  POLYHEAD_CHECK(a.end <= b.begin || b.end <= a.begin, an, " and ", bn,
                 " overlap in memory; outputs must not share memory with inputs or each other");
}

void check_dtype(const TensorView& t, std::string_view name, std::initializer_list<DType> ok,
                 std::string_view allowed) {
  POLYHEAD_CHECK(std::find(ok.begin(), ok.end(), t.dtype) != ok.end(), name, " dtype ",
                 dtype_name(t.dtype), " is not supported (", allowed, ")");
}

void check_device(const TensorView& t, std::string_view name, const Device& dev) {
  POLYHEAD_CHECK(t.device == dev, name, " is on ", to_string(t.device), " but q is on ",
                 to_string(dev), "; all tensors must be on one device");
}

// Checks a per-head f32 vector (ALiBi slopes, sink logits) and, on the host, its values.
void check_head_vector(const TensorView& t, std::string_view name, int64_t heads,
                       const Device& dev) {
  check_tensor(t, name, 1, "[Hq]");
  check_dtype(t, name, {DType::f32}, "f32");
  POLYHEAD_CHECK(t.shape[0] == heads, name, ".shape[0] = ", t.shape[0], " must equal q heads ",
                 heads);
  check_device(t, name, dev);
  if (t.device.type == DeviceType::cpu) {
    const auto* p = static_cast<const float*>(t.data);
    for (int64_t h = 0; h < heads; ++h) {
      POLYHEAD_CHECK(std::isfinite(p[h * t.stride[0]]), name, "[", h, "] = ", p[h * t.stride[0]],
                     " must be finite");
    }
  }
}

// Checks cu_seqlens (int32 [nseq + 1], 0 = c0 <= c1 <= ... = total) and returns the largest
// sequence length. Contents are checked where the host can read them.
int64_t check_cu_seqlens(const TensorView& t, std::string_view name, int64_t total,
                         std::string_view total_name, const Device& dev) {
  check_tensor(t, name, 1, "[nseq + 1]");
  check_dtype(t, name, {DType::i32}, "i32");
  POLYHEAD_CHECK(t.device.type == DeviceType::cpu || t.device == dev, name, " is on ",
                 to_string(t.device), "; it must be on the host or on q's device ", to_string(dev));
  POLYHEAD_CHECK(t.shape[0] >= 2, name, " has ", t.shape[0],
                 " entries; it needs nseq + 1 >= 2 offsets");
  if (t.device.type != DeviceType::cpu) return total;
  const auto* p = static_cast<const int32_t*>(t.data);
  const int64_t n = t.shape[0];
  auto at = [&](int64_t i) { return int64_t(p[i * t.stride[0]]); };
  POLYHEAD_CHECK(at(0) == 0, name, "[0] = ", at(0), " must be 0");
  int64_t longest = 0;
  for (int64_t i = 1; i < n; ++i) {
    POLYHEAD_CHECK(at(i) >= at(i - 1), name, " is not non-decreasing: ", name, "[", i - 1,
                   "] = ", at(i - 1), " > ", name, "[", i, "] = ", at(i));
    POLYHEAD_CHECK(at(i) <= total, name, "[", i, "] = ", at(i), " exceeds ", total_name, " = ",
                   total);
    longest = std::max(longest, at(i) - at(i - 1));
  }
  POLYHEAD_CHECK(at(n - 1) == total, name, "[", n - 1, "] = ", at(n - 1), " must equal ",
                 total_name, " = ", total, " (the packed token count)");
  return longest;
}

}  // namespace

ProblemShape validate(const AttentionProblem& p) {
  constexpr std::string_view kFloat = "f32, f16, bf16, f64";
  const Extent eq = check_tensor(p.q, "q", 4, "[B, Sq, Hq, Dqk]");
  const Extent ek = check_tensor(p.k, "k", 4, "[B, Sk, Hkv, Dqk]");
  const Extent ev = check_tensor(p.v, "v", 4, "[B, Sk, Hkv, Dv]");
  const Extent eo = check_tensor(p.o, "o", 4, "[B, Sq, Hq, Dv]");
  check_dtype(p.q, "q", {DType::f32, DType::f16, DType::bf16, DType::f64}, kFloat);
  POLYHEAD_CHECK(p.k.dtype == p.q.dtype, "k dtype ", dtype_name(p.k.dtype),
                 " differs from q dtype ", dtype_name(p.q.dtype), "; q, k, v share one dtype");
  POLYHEAD_CHECK(p.v.dtype == p.q.dtype, "v dtype ", dtype_name(p.v.dtype),
                 " differs from q dtype ", dtype_name(p.q.dtype), "; q, k, v share one dtype");
  check_dtype(p.o, "o", {DType::f32, DType::f16, DType::bf16, DType::f64}, kFloat);
  const Device dev = p.q.device;
  check_device(p.k, "k", dev);
  check_device(p.v, "v", dev);
  check_device(p.o, "o", dev);

  ProblemShape s;
  s.batch = p.q.shape[0];
  s.seqlen_q = p.q.shape[1];
  s.heads_q = p.q.shape[2];
  s.head_dim_qk = p.q.shape[3];
  s.seqlen_k = p.k.shape[1];
  s.heads_kv = p.k.shape[2];
  s.head_dim_v = p.v.shape[3];

  POLYHEAD_CHECK(p.k.shape[0] == s.batch, "k.shape[0] = ", p.k.shape[0], " must equal q batch ",
                 s.batch);
  POLYHEAD_CHECK(p.k.shape[3] == s.head_dim_qk, "k.shape[3] = ", p.k.shape[3],
                 " must equal q head dim ", s.head_dim_qk, " (Dqk)");
  POLYHEAD_CHECK(s.heads_q % s.heads_kv == 0, "k.shape[2] = ", s.heads_kv,
                 " does not divide q heads ", s.heads_q, " (Hq % Hkv must be 0)");
  for (int d = 0; d < 3; ++d) {
    POLYHEAD_CHECK(p.v.shape[d] == p.k.shape[d], "v.shape[", d, "] = ", p.v.shape[d],
                   " must equal k.shape[", d, "] = ", p.k.shape[d]);
  }
  for (int d = 0; d < 3; ++d) {
    POLYHEAD_CHECK(p.o.shape[d] == p.q.shape[d], "o.shape[", d, "] = ", p.o.shape[d],
                   " must equal q.shape[", d, "] = ", p.q.shape[d]);
  }
  POLYHEAD_CHECK(p.o.shape[3] == s.head_dim_v, "o.shape[3] = ", p.o.shape[3],
                 " must equal v head dim ", s.head_dim_v, " (Dv)");
  check_no_self_overlap(p.o, "o");
  for (auto [e, n] : {std::pair{eq, "q"}, std::pair{ek, "k"}, std::pair{ev, "v"}}) {
    check_disjoint(eo, "o", e, n);
  }

  if (p.lse) {
    const TensorView& l = *p.lse;
    const Extent el = check_tensor(l, "lse", 3, "[B, Hq, Sq]");
    check_dtype(l, "lse", {DType::f32, DType::f64}, "f32 (f64 on the reference backend)");
    check_device(l, "lse", dev);
    const int64_t want[3] = {s.batch, s.heads_q, s.seqlen_q};
    for (int d = 0; d < 3; ++d) {
      POLYHEAD_CHECK(l.shape[d] == want[d], "lse.shape[", d, "] = ", l.shape[d], " must be ",
                     want[d], " (lse is [B, Hq, Sq] = [", want[0], ", ", want[1], ", ", want[2],
                     "])");
    }
    check_no_self_overlap(l, "lse");
    for (auto [e, n] :
         {std::pair{eq, "q"}, std::pair{ek, "k"}, std::pair{ev, "v"}, std::pair{eo, "o"}}) {
      check_disjoint(el, "lse", e, n);
    }
  }

  POLYHEAD_CHECK(p.cu_seqlens_q.has_value() == p.cu_seqlens_k.has_value(),
                 "cu_seqlens_q and cu_seqlens_k must be given together (got only ",
                 p.cu_seqlens_q ? "cu_seqlens_q" : "cu_seqlens_k", ")");
  if (p.cu_seqlens_q) {
    POLYHEAD_CHECK(s.batch == 1, "q.shape[0] = ", s.batch,
                   " must be 1 with cu_seqlens (the packed layout is [1, total, H, D])");
    POLYHEAD_CHECK(p.cu_seqlens_q->shape[0] == p.cu_seqlens_k->shape[0], "cu_seqlens_q has ",
                   p.cu_seqlens_q->shape[0], " entries but cu_seqlens_k has ",
                   p.cu_seqlens_k->shape[0], "; both are [nseq + 1]");
    const int64_t total_q = s.seqlen_q, total_k = s.seqlen_k;
    s.seqlen_q = check_cu_seqlens(*p.cu_seqlens_q, "cu_seqlens_q", total_q, "q.shape[1]", dev);
    s.seqlen_k = check_cu_seqlens(*p.cu_seqlens_k, "cu_seqlens_k", total_k, "k.shape[1]", dev);
    if (p.cu_seqlens_q->rank == 1 && p.cu_seqlens_q->shape[0] >= 2) {
      s.batch = p.cu_seqlens_q->shape[0] - 1;
    }
    s.varlen = true;
  }

  if (p.scale) {
    POLYHEAD_CHECK(std::isfinite(*p.scale), "scale = ", *p.scale, " must be finite");
    s.scale = *p.scale;
  } else {
    s.scale = float(1.0 / std::sqrt(double(s.head_dim_qk)));
  }
  POLYHEAD_CHECK(std::isfinite(p.softcap) && p.softcap >= 0.0f, "softcap = ", p.softcap,
                 " must be finite and >= 0 (0 disables it)");
  if (p.alibi_slopes) check_head_vector(*p.alibi_slopes, "alibi_slopes", s.heads_q, dev);
  if (p.sinks) check_head_vector(*p.sinks, "sinks", s.heads_q, dev);

  // The mask must fit every sequence; its rule validates its own parameters.
  detail::check_mask(p.mask, {s.seqlen_q, s.seqlen_k, s.heads_q, s.heads_kv});
  return s;
}

}  // namespace polyhead
