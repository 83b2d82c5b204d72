// The cpu backend's tile kernel (FlashAttention's algorithm on CPU SIMD), compiled once per
// SIMD target by Highway and dispatched at run time.
//
// Layout choice: scores are kept transposed, S^T[j][i] (key-major, query rows along the
// vector). Then
//   - S^T = K * Q^T broadcasts k[j][d] and loads rows of Q^T, so K is used as stored (no
//     transpose per tile); only Q is transposed, once per task;
//   - the softmax statistics of 8/16 query rows sit in one vector, so the row max, exp and
//     row sum are plain element-wise vector ops over the keys;
//   - O += P * V broadcasts P[i][j] = S^T[j][i] and loads rows of V, again as stored.
// Both products are register-blocked 6 x (2 vectors) outer-product micro-kernels, the shape of
// an sgemm inner kernel (12 accumulators + 2 loads + 1 broadcast fit 16 AVX2 registers).
//
// Online-softmax invariant, per query row i after the key tiles seen so far:
//   m_i = max_j s_ij,  l_i = sum_j exp(s_ij - m_i),  O_i = sum_j exp(s_ij - m_i) v_j,
// and a new tile with max m' rescales l_i and O_i by exp(m_i - m') before adding its terms.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/fast/tile_kernel.cpp"
// Sizeless vector types (SVE, RVV) cannot live in the register arrays below.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
// foreach_target.h re-includes this file once per target; it must come first.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
// clang-format on

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "cpu/fast/tile_kernel.h"
#include "cpu/fast/tile_size.h"
#include "polyhead/error.h"

HWY_BEFORE_NAMESPACE();
namespace polyhead::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr int kRegRows = 6;  // rows of the register block in both micro-kernels

inline size_t round_up(size_t x, size_t m) {
  return (x + m - 1) / m * m;
}

// Converts `n` contiguous elements of `dtype` at `src` to fp32 at `dst` (n a multiple of the
// vector length or not; the tail is scalar).
void load_row(DF df, const void* src, DType dtype, size_t n, float* HWY_RESTRICT dst) {
  const size_t N = hn::Lanes(df);
  size_t x = 0;
  switch (dtype) {
    case DType::f32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::f16: {
      const hn::Rebind<hwy::float16_t, DF> dh;
      const auto* s = static_cast<const hwy::float16_t*>(src);
      for (; x + N <= n; x += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, s + x)), df, dst + x);
      for (; x < n; ++x) dst[x] = half_to_float(static_cast<const uint16_t*>(src)[x]);
      return;
    }
    case DType::bf16: {
      const hn::Rebind<hwy::bfloat16_t, DF> db;
      const auto* s = static_cast<const hwy::bfloat16_t*>(src);
      for (; x + N <= n; x += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(db, s + x)), df, dst + x);
      for (; x < n; ++x) dst[x] = bf16_to_float(static_cast<const uint16_t*>(src)[x]);
      return;
    }
    default:
      return;
  }
}

// Loads element t of a strided row (any dtype) as fp32.
inline float load_one(const void* base, DType dtype, int64_t off) {
  return detail::load_f32(base, dtype, off);
}

// Converts `n` elements of a row at `base + off` with element stride `stride` to fp32.
void load_strided_row(DF df, const void* base, DType dtype, int64_t off, int64_t stride, size_t n,
                      float* HWY_RESTRICT dst) {
  if (stride == 1) {
    const auto* bytes = static_cast<const char*>(base) + off * dtype_size(dtype);
    load_row(df, bytes, dtype, n, dst);
    return;
  }
  for (size_t x = 0; x < n; ++x) dst[x] = load_one(base, dtype, off + int64_t(x) * stride);
}

// st[r][i0 .. i0 + 2N) = sum_x k[r][x] * qt[x][i0 .. i0 + 2N) for r < R; key r's row starts at
// k + r * k_stride.
template <int R>
HWY_INLINE void score_block(DF df, const float* HWY_RESTRICT k, int64_t k_stride, size_t dqk,
                            const float* HWY_RESTRICT qt, size_t m_pad, size_t i0,
                            float* HWY_RESTRICT st) {
  const size_t N = hn::Lanes(df);
  VF acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = hn::Zero(df);
  const float* q = qt + i0;
  for (size_t x = 0; x < dqk; ++x, q += m_pad) {
    const VF b0 = hn::Load(df, q), b1 = hn::Load(df, q + N);
    for (int r = 0; r < R; ++r) {
      const VF a = hn::Set(df, k[r * k_stride + int64_t(x)]);
      acc0[r] = hn::MulAdd(a, b0, acc0[r]);
      acc1[r] = hn::MulAdd(a, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    hn::Store(acc0[r], df, st + size_t(r) * m_pad + i0);
    hn::Store(acc1[r], df, st + size_t(r) * m_pad + i0 + N);
  }
}

// o[r0 + r][c0 .. c0 + 2N) += sum_{j < cols} p[j][r0 + r] * v[j][c0 .. c0 + 2N) for r < R; key
// j's value row starts at v + j * v_stride (not necessarily aligned).
template <int R>
HWY_INLINE void value_block(DF df, const float* HWY_RESTRICT p, size_t m_pad, size_t r0,
                            const float* HWY_RESTRICT v, int64_t v_stride, size_t dv_pad,
                            size_t cols, size_t c0, float* HWY_RESTRICT o) {
  const size_t N = hn::Lanes(df);
  VF acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) {
    acc0[r] = hn::Load(df, o + (r0 + size_t(r)) * dv_pad + c0);
    acc1[r] = hn::Load(df, o + (r0 + size_t(r)) * dv_pad + c0 + N);
  }
  const float* pj = p + r0;
  const float* vj = v + c0;
  for (size_t j = 0; j < cols; ++j, pj += m_pad, vj += v_stride) {
    const VF b0 = hn::LoadU(df, vj), b1 = hn::LoadU(df, vj + N);
    for (int r = 0; r < R; ++r) {
      const VF a = hn::Set(df, pj[r]);
      acc0[r] = hn::MulAdd(a, b0, acc0[r]);
      acc1[r] = hn::MulAdd(a, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    hn::Store(acc0[r], df, o + (r0 + size_t(r)) * dv_pad + c0);
    hn::Store(acc1[r], df, o + (r0 + size_t(r)) * dv_pad + c0 + N);
  }
}

// Runtime row count -> compile-time register block.
template <template <int> class F, typename... Args>
HWY_INLINE void with_rows(size_t rows, Args&&... args) {
  switch (rows) {
    case 1:
      F<1>::run(args...);
      break;
    case 2:
      F<2>::run(args...);
      break;
    case 3:
      F<3>::run(args...);
      break;
    case 4:
      F<4>::run(args...);
      break;
    case 5:
      F<5>::run(args...);
      break;
    default:
      F<6>::run(args...);
      break;
  }
}
template <int R>
struct ScoreBlock {
  template <typename... A>
  static void run(A&&... a) {
    score_block<R>(a...);
  }
};
template <int R>
struct ValueBlock {
  template <typename... A>
  static void run(A&&... a) {
    value_block<R>(a...);
  }
};

// exp(x) for the softmax, where x = s - max <= 0, -inf (masked) or NaN (kept, as the reference
// keeps it). exp(x) = 2^n * 2^f with y = x log2(e), n = round(y), |f| <= 1/2, and 2^f from its
// degree-6 Taylor polynomial (relative error below 1.3e-7, about one fp32 ulp). Results under
// 2^-126 flush to 0, which the row sum cannot notice. 14 vector ops against Highway's Exp's
// ~25: the exponentials were 9% of a D = 128 tile's time.
HWY_INLINE VF exp_nan(DF df, VF x) {
  const hn::RebindToSigned<DF> di;
  const VF y = hn::Max(hn::Mul(x, hn::Set(df, 1.44269504088896341f)), hn::Set(df, -127.0f));
  const VF n = hn::Round(y);
  const VF f = hn::Sub(y, n);
  VF p = hn::Set(df, 1.5403530393381606e-4f);
  p = hn::MulAdd(p, f, hn::Set(df, 1.3333558146428443e-3f));
  p = hn::MulAdd(p, f, hn::Set(df, 9.6181291076284772e-3f));
  p = hn::MulAdd(p, f, hn::Set(df, 5.5504108664821580e-2f));
  p = hn::MulAdd(p, f, hn::Set(df, 2.4022650695910071e-1f));
  p = hn::MulAdd(p, f, hn::Set(df, 6.9314718055994531e-1f));
  p = hn::MulAdd(p, f, hn::Set(df, 1.0f));
  // 2^n through the exponent field; n = -127 gives the bit pattern of +0.
  const auto bits = hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di, n), hn::Set(di, 127)));
  const VF e = hn::Mul(p, hn::BitCast(df, bits));
  return hn::IfThenElse(hn::IsNaN(x), x, e);
}

void RunTask(const TaskArgs& task, Workspace& ws) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const AttentionProblem& p = *task.problem;
  const ProblemShape& s = *task.shape;
  const detail::Sequence& seq = *task.seq;
  const BlockMap& map = *task.map;
  const int64_t h = task.head;
  const int64_t hk = h / (s.heads_q / s.heads_kv);
  const int64_t i_begin = task.q_tile * kBlockM;
  const size_t rows = size_t(std::min(kBlockM, seq.seqlen_q - i_begin));
  const size_t dqk = size_t(s.head_dim_qk), dv = size_t(s.head_dim_v);
  const size_t m_pad = round_up(size_t(kBlockM), 2 * N);
  const size_t m_act = round_up(rows, 2 * N);  // query columns computed in S^T
  const size_t dv_pad = round_up(dv, 2 * N);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const bool top_left = p.mask.alignment() == Alignment::top_left;
  const int64_t pos_offset = top_left ? 0 : seq.seqlen_k - seq.seqlen_q;  // pos(i) = i + offset

  float* qt = ws.get(Workspace::kQt, dqk * m_pad);           // [Dqk][m_pad], scaled
  float* kb = ws.get(Workspace::kK, size_t(kBlockN) * dqk);  // [kBlockN][Dqk]
  const bool k_direct = p.k.dtype == DType::f32 && p.k.stride[3] == 1;
  const bool v_direct = p.v.dtype == DType::f32 && p.v.stride[3] == 1 && dv == dv_pad;
  float* vb = ws.get(Workspace::kV, size_t(kBlockN) * dv_pad);      // [kBlockN][dv_pad]
  float* st = ws.get(Workspace::kScores, size_t(kBlockN) * m_pad);  // S^T, then P^T
  float* ob = ws.get(Workspace::kOut, m_pad * dv_pad);              // [m_pad][dv_pad]
  float* stats = ws.get(Workspace::kStats, 3 * m_pad + dqk);
  float* m = stats;                  // running max per query row
  float* l = stats + m_pad;          // running sum
  float* alpha = stats + 2 * m_pad;  // rescale factor of the current tile
  float* qrow = stats + 3 * m_pad;   // one query row as fp32
  if (ws.mask.size() < size_t(kBlockM * kBlockN)) ws.mask.resize(size_t(kBlockM * kBlockN));

  // Q^T, scaled by the softmax scale; padding columns are zero.
  std::fill(qt, qt + dqk * m_pad, 0.0f);
  for (size_t r = 0; r < rows; ++r) {
    const int64_t i = seq.q_start + i_begin + int64_t(r);
    const int64_t off = seq.batch * p.q.stride[0] + i * p.q.stride[1] + h * p.q.stride[2];
    load_strided_row(df, p.q.data, p.q.dtype, off, p.q.stride[3], dqk, qrow);
    for (size_t x = 0; x < dqk; ++x) qt[x * m_pad + r] = qrow[x] * s.scale;
  }
  for (size_t i = 0; i < m_pad; ++i) m[i] = neg_inf, l[i] = 0.0f;
  std::fill(ob, ob + m_pad * dv_pad, 0.0f);

  const float softcap = p.softcap;
  const float slope =
      p.alibi_slopes
          ? static_cast<const float*>(p.alibi_slopes->data)[h * p.alibi_slopes->stride[0]]
          : 0.0f;

  map.row(h, task.q_tile, ws.tiles);
  for (const KeyTile& tile : ws.tiles) {
    const int64_t j_begin = tile.index * kBlockN;
    const size_t cols = size_t(std::min(kBlockN, seq.seqlen_k - j_begin));

    // K and V rows as fp32, read in place when they already are (fp32 with a contiguous head
    // dim, and for V a head dim the vector pairs divide), else converted into the workspace
    // (V padded with zero columns to dv_pad).
    const int64_t key0 = seq.k_start + j_begin;
    auto tile_rows = [&](const TensorView& t, bool direct, float* buf, size_t width, size_t pad,
                         int64_t& stride) -> const float* {
      const int64_t off0 = seq.batch * t.stride[0] + key0 * t.stride[1] + hk * t.stride[2];
      if (direct) {
        stride = t.stride[1];
        return static_cast<const float*>(t.data) + off0;
      }
      stride = int64_t(pad);
      for (size_t j = 0; j < cols; ++j) {
        float* row = buf + j * pad;
        load_strided_row(df, t.data, t.dtype, off0 + int64_t(j) * t.stride[1], t.stride[3], width,
                         row);
        std::fill(row + width, row + pad, 0.0f);
      }
      return buf;
    };
    int64_t k_stride = 0, v_stride = 0;
    const float* kt = tile_rows(p.k, k_direct, kb, dqk, dqk, k_stride);
    const float* vt = tile_rows(p.v, v_direct, vb, dv, dv_pad, v_stride);
    bool v_finite = true;
    if (!tile.full) {
      for (size_t j = 0; j < cols; ++j) {
        for (size_t c = 0; c < dv; ++c)
          v_finite &= std::isfinite(vt[int64_t(j) * v_stride + int64_t(c)]);
      }
    }

    // S^T[j][i] = sum_x k[j][x] * (scale * q[i][x]).
    for (size_t i0 = 0; i0 < m_act; i0 += 2 * N) {
      for (size_t j0 = 0; j0 < cols; j0 += kRegRows) {
        with_rows<ScoreBlock>(std::min<size_t>(kRegRows, cols - j0), df,
                              kt + int64_t(j0) * k_stride, k_stride, dqk, qt, m_pad, i0,
                              st + j0 * m_pad);
      }
    }

    // Score transforms: softcap, ALiBi, then the mask on partial tiles.
    if (softcap > 0.0f) {
      const VF c = hn::Set(df, softcap), inv_c = hn::Set(df, 1.0f / softcap);
      for (size_t j = 0; j < cols; ++j) {
        for (size_t i0 = 0; i0 < m_act; i0 += N) {
          float* x = st + j * m_pad + i0;
          hn::Store(hn::Mul(c, hn::Tanh(df, hn::Mul(hn::Load(df, x), inv_c))), df, x);
        }
      }
    }
    if (p.alibi_slopes) {
      const hn::RebindToSigned<DF> di;
      const VF neg_slope = hn::Set(df, -slope);
      for (size_t j = 0; j < cols; ++j) {
        const int64_t key = j_begin + int64_t(j);
        for (size_t i0 = 0; i0 < m_act; i0 += N) {
          // distance |pos(i) - j| for i = i_begin + i0 + lane, exact in int32 for S < 2^31
          const auto pos = hn::Iota(di, int32_t(i_begin + int64_t(i0) + pos_offset - key));
          const VF dist = hn::ConvertTo(df, hn::Abs(pos));
          float* x = st + j * m_pad + i0;
          hn::Store(hn::MulAdd(neg_slope, dist, hn::Load(df, x)), df, x);
        }
      }
    }
    uint8_t* mask = ws.mask.data();
    if (!tile.full) {
      for (size_t r = 0; r < rows; ++r) {
        uint8_t* mr = mask + r * size_t(kBlockN);
        map.allowed_row(h, i_begin + int64_t(r), j_begin, int64_t(cols), mr);
        for (size_t j = 0; j < cols; ++j) {
          if (!mr[j]) st[j * m_pad + r] = neg_inf;
        }
      }
    }

    // Online softmax, vectorized over query rows: new max, rescale factor, P^T in place.
    const VF vneg_inf = hn::Set(df, neg_inf);
    for (size_t i0 = 0; i0 < m_act; i0 += N) {
      VF mx = vneg_inf;
      for (size_t j = 0; j < cols; ++j) mx = hn::Max(mx, hn::Load(df, st + j * m_pad + i0));
      const VF m_old = hn::Load(df, m + i0);
      const VF m_new = hn::Max(m_old, mx);
      // A row that has seen only masked keys keeps m = -inf; subtract 0 so exp gives 0, not NaN.
      const VF m_sub = hn::IfThenZeroElse(hn::Eq(m_new, vneg_inf), m_new);
      const VF a = exp_nan(df, hn::Sub(m_old, m_sub));
      VF sum = hn::Zero(df);
      for (size_t j = 0; j < cols; ++j) {
        float* x = st + j * m_pad + i0;
        const VF e = exp_nan(df, hn::Sub(hn::Load(df, x), m_sub));
        hn::Store(e, df, x);
        sum = hn::Add(sum, e);
      }
      hn::Store(m_new, df, m + i0);
      hn::Store(hn::MulAdd(hn::Load(df, l + i0), a, sum), df, l + i0);
      hn::Store(a, df, alpha + i0);
    }
    for (size_t r = 0; r < rows; ++r) {
      if (alpha[r] == 1.0f) continue;
      const VF a = hn::Set(df, alpha[r]);
      float* orow = ob + r * dv_pad;
      for (size_t c = 0; c < dv_pad; c += N)
        hn::Store(hn::Mul(a, hn::Load(df, orow + c)), df, orow + c);
    }

    // O += P * V. A masked key has p = 0 exactly, which adds nothing unless its value is
    // Inf/NaN (0 * Inf = NaN); the reference skips masked keys, so such tiles skip them too.
    if (tile.full || v_finite) {
      for (size_t c0 = 0; c0 < dv_pad; c0 += 2 * N) {
        for (size_t r0 = 0; r0 < rows; r0 += kRegRows) {
          with_rows<ValueBlock>(std::min<size_t>(kRegRows, rows - r0), df, st, m_pad, r0, vt,
                                v_stride, dv_pad, cols, c0, ob);
        }
      }
    } else {
      for (size_t r = 0; r < rows; ++r) {
        const uint8_t* mr = mask + r * size_t(kBlockN);
        for (size_t j = 0; j < cols; ++j) {
          if (!mr[j]) continue;
          const float w = st[j * m_pad + r];
          for (size_t c = 0; c < dv; ++c)
            ob[r * dv_pad + c] += w * vt[int64_t(j) * v_stride + int64_t(c)];
        }
      }
    }
  }

  // Epilogue: fold in the sink, normalize, write o and lse once.
  const float sink =
      p.sinks ? static_cast<const float*>(p.sinks->data)[h * p.sinks->stride[0]] : neg_inf;
  for (size_t r = 0; r < rows; ++r) {
    float mr = m[r], lr = l[r], o_scale = 1.0f;
    if (p.sinks) {
      const float mf = std::max(mr, sink);  // finite: the sink is
      o_scale = mr == neg_inf ? 0.0f : std::exp(mr - mf);
      lr = lr * o_scale + std::exp(sink - mf);
      mr = mf;
    }
    float lse;
    float* orow = ob + r * dv_pad;
    if (std::isnan(lr)) {
      // A visible NaN score (or an Inf one, whose exp(s - max) is NaN) poisons the row, as in
      // the reference; the running max may have dropped the NaN, so test the sum.
      std::fill(orow, orow + dv, std::numeric_limits<float>::quiet_NaN());
      lse = std::numeric_limits<float>::quiet_NaN();
    } else if (mr == neg_inf || lr == 0.0f) {
      // No visible key (or none with mass): o = 0, lse = -inf (or the sink).
      std::fill(orow, orow + dv, 0.0f);
      lse = p.sinks ? sink : neg_inf;
    } else {
      const float inv = o_scale / lr;
      for (size_t c = 0; c < dv; ++c) orow[c] *= inv;
      lse = mr + std::log(lr);
    }
    const int64_t i = seq.q_start + i_begin + int64_t(r);
    const int64_t ooff = seq.batch * p.o.stride[0] + i * p.o.stride[1] + h * p.o.stride[2];
    if (p.o.dtype == DType::f32 && p.o.stride[3] == 1) {
      std::memcpy(static_cast<float*>(p.o.data) + ooff, orow, dv * sizeof(float));
    } else {
      for (size_t c = 0; c < dv; ++c) {
        detail::store_f64(p.o.data, p.o.dtype, ooff + int64_t(c) * p.o.stride[3], orow[c]);
      }
    }
    if (p.lse) {
      const TensorView& t = *p.lse;
      detail::store_f64(t.data, t.dtype,
                        seq.batch * t.stride[0] + h * t.stride[1] + i * t.stride[2], lse);
    }
  }
}

const char* TargetName() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace HWY_NAMESPACE
}  // namespace polyhead::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace polyhead::cpu {

HWY_EXPORT(RunTask);
HWY_EXPORT(TargetName);

void run_task(const TaskArgs& task, Workspace& ws) {
  HWY_DYNAMIC_DISPATCH(RunTask)(task, ws);
}
const char* simd_target() {
  return HWY_DYNAMIC_DISPATCH(TargetName)();
}

Workspace::~Workspace() {
  for (float* b : buf_) std::free(b);
}

float* Workspace::get(Slot slot, size_t floats) {
  if (cap_[slot] < floats) {
    std::free(buf_[slot]);
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    buf_[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    POLYHEAD_CHECK(buf_[slot] != nullptr, "cpu backend: out of memory allocating ",
                   floats * sizeof(float), " bytes of workspace");
    cap_[slot] = floats;
  }
  return buf_[slot];
}

}  // namespace polyhead::cpu
#endif
