#include "support/case.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "polyhead/dtype.h"
#include "support/random.h"

namespace polyhead::testing {
namespace {

std::string list(const std::vector<int32_t>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str() + "]";
}

// Fills every logical element of `t` with scale * N(0, 1) drawn in fp32, rounded to t's dtype.
void fill_normal(HostTensor& t, Rng rng, float scale) {
  for (int64_t f = 0, n = t.numel(); f < n; ++f) t.set(f, double(rng.normal() * scale));
}

HostTensor cu_seqlens(const std::vector<int32_t>& lengths, const Layout& layout) {
  HostTensor t(DType::i32, {int64_t(lengths.size()) + 1}, layout);
  int64_t total = 0;
  t.set(0, 0.0);
  for (size_t i = 0; i < lengths.size(); ++i) t.set(int64_t(i) + 1, double(total += lengths[i]));
  return t;
}

// The next smaller value of `values` (ascending) below x, or x if none is.
int64_t smaller(const std::vector<int64_t>& values, int64_t x) {
  int64_t best = x;
  for (int64_t v : values) {
    if (v < x && (best == x || v > best)) best = v;
  }
  return best;
}

}  // namespace

int64_t Case::total_q() const {
  if (!varlen()) return seqlen_q;
  return std::accumulate(seqlens_q.begin(), seqlens_q.end(), int64_t{0});
}

int64_t Case::total_k() const {
  if (!varlen()) return seqlen_k;
  return std::accumulate(seqlens_k.begin(), seqlens_k.end(), int64_t{0});
}

uint64_t Case::seed() const {
  return case_seed(suite, index);
}

double Case::work() const {
  double pairs = 0.0;
  if (varlen()) {
    for (size_t s = 0; s < seqlens_q.size(); ++s) pairs += double(seqlens_q[s]) * seqlens_k[s];
  } else {
    pairs = double(batch) * double(seqlen_q) * double(seqlen_k);
  }
  return pairs * double(heads_q) * double(dim_qk + dim_v);
}

std::string Case::describe() const {
  std::ostringstream os;
  os << std::setprecision(9);
  os << "case " << suite << "#" << index << " (seed 0x" << std::hex << seed() << std::dec << "): ";
  if (varlen()) {
    os << "varlen seqlens_q=" << list(seqlens_q) << " seqlens_k=" << list(seqlens_k);
  } else {
    os << "B=" << batch << " Sq=" << seqlen_q << " Sk=" << seqlen_k;
  }
  os << " Hq=" << heads_q << " Hkv=" << heads_kv << " Dqk=" << dim_qk << " Dv=" << dim_v
     << " dtype=" << dtype_name(dtype) << " o=" << dtype_name(out_dtype()) << " mask=" << mask
     << " scale=";
  if (scale) {
    os << *scale;
  } else {
    os << "default";
  }
  os << " softcap=" << softcap << " alibi=" << (alibi ? "yes" : "no")
     << " sinks=" << (sinks ? "yes" : "no") << " lse=" << (lse ? "yes" : "no")
     << " layouts(qkv: " << qkv_layout.describe() << "; o: " << o_layout.describe()
     << "; lse: " << lse_layout.describe() << ")" << (packed_qkv ? " packed_qkv" : "")
     << " input_scale=" << input_scale << " num_threads=" << num_threads;
  if (!pokes.empty()) {
    os << " pokes:";
    for (const Poke& p : pokes) {
      os << " " << p.tensor << "[" << p.index[0] << "," << p.index[1] << "," << p.index[2] << ","
         << p.index[3] << "]=" << p.value;
    }
  }
  return os.str();
}

Problem make_problem(const Case& c) {
  if (c.heads_q % c.heads_kv != 0) throw std::invalid_argument("Case: Hq % Hkv != 0");
  if (c.varlen() && c.seqlens_q.size() != c.seqlens_k.size()) {
    throw std::invalid_argument("Case: seqlens_q and seqlens_k differ in length");
  }
  Problem p;
  p.spec = c;
  const int64_t b = c.tensor_batch(), tq = c.total_q(), tk = c.total_k();
  if (c.packed_qkv) {
    if (tq != tk || c.dim_qk != c.dim_v) {
      throw std::invalid_argument("Case: packed_qkv needs Sq == Sk and Dqk == Dv");
    }
    const HostTensor qkv(c.dtype, {b, tq, c.heads_q + 2 * c.heads_kv, c.dim_qk}, c.qkv_layout);
    p.q = qkv.slice(2, 0, c.heads_q);
    p.k = qkv.slice(2, c.heads_q, c.heads_kv);
    p.v = qkv.slice(2, c.heads_q + c.heads_kv, c.heads_kv);
  } else {
    p.q = HostTensor(c.dtype, {b, tq, c.heads_q, c.dim_qk}, c.qkv_layout);
    p.k = HostTensor(c.dtype, {b, tk, c.heads_kv, c.dim_qk}, c.qkv_layout);
    p.v = HostTensor(c.dtype, {b, tk, c.heads_kv, c.dim_v}, c.qkv_layout);
  }
  const uint64_t seed = c.seed();
  fill_normal(p.q, Rng(seed ^ 0x71), c.input_scale);
  fill_normal(p.k, Rng(seed ^ 0x6b), c.input_scale);
  fill_normal(p.v, Rng(seed ^ 0x76), 1.0f);
  for (const Poke& poke : c.pokes) {
    HostTensor& t = poke.tensor == 'q' ? p.q : poke.tensor == 'k' ? p.k : p.v;
    const auto& i = poke.index;
    t.set_at({i[0], i[1], i[2], i[3]}, poke.value);
  }

  p.o = HostTensor(c.out_dtype(), {b, tq, c.heads_q, c.dim_v}, c.o_layout);
  if (c.lse) p.lse = HostTensor(DType::f32, {b, c.heads_q, tq}, c.lse_layout);
  // Head vectors and offsets follow the inputs' element stride (strided views of them too).
  const Layout vector_layout{false, 0, c.qkv_layout.inner_stride};
  if (c.varlen()) {
    p.cu_seqlens_q = cu_seqlens(c.seqlens_q, vector_layout);
    p.cu_seqlens_k = cu_seqlens(c.seqlens_k, vector_layout);
  }
  if (c.alibi) {
    p.alibi_slopes = HostTensor(DType::f32, {c.heads_q}, vector_layout);
    for (int64_t h = 0; h < c.heads_q; ++h) {
      p.alibi_slopes.set(h, double(std::exp2f(-8.0f * float(h + 1) / float(c.heads_q))));
    }
  }
  if (c.sinks) {
    p.sinks = HostTensor(DType::f32, {c.heads_q}, vector_layout);
    Rng rng(seed ^ 0x73);
    for (int64_t h = 0; h < c.heads_q; ++h) p.sinks.set(h, double(float(rng.uniform(-2, 4))));
  }
  return p;
}

AttentionProblem Problem::view() const {
  AttentionProblem a;
  a.q = q.view();
  a.k = k.view();
  a.v = v.view();
  a.o = o.view();
  if (!lse.empty()) a.lse = lse.view();
  if (!cu_seqlens_q.empty()) {
    a.cu_seqlens_q = cu_seqlens_q.view();
    a.cu_seqlens_k = cu_seqlens_k.view();
  }
  if (!alibi_slopes.empty()) a.alibi_slopes = alibi_slopes.view();
  if (!sinks.empty()) a.sinks = sinks.view();
  a.scale = spec.scale;
  a.softcap = spec.softcap;
  a.mask = MaskSpec::parse(spec.mask);
  return a;
}

namespace {

Layout random_layout(Rng& rng, bool inner) {
  Layout l;
  l.swap_12 = rng.chance(0.5);
  if (rng.chance(0.5)) l.pad = rng.uniform_int(1, 5);
  if (inner && rng.chance(0.3)) l.inner_stride = 2;
  return l;
}

// Shrinks the case until the reference can run it within the work budget, keeping the GQA
// ratio and the awkward sizes for as long as possible.
void fit_budget(Case& c, const RandomSpace& space) {
  const std::vector<int64_t> dims_small = {1, 7, 16, 32, 64};
  auto longest = [&] {
    if (!c.varlen()) return std::max(c.seqlen_q, c.seqlen_k);
    return int64_t(std::max(*std::max_element(c.seqlens_q.begin(), c.seqlens_q.end()),
                            *std::max_element(c.seqlens_k.begin(), c.seqlens_k.end())));
  };
  auto shorten = [&] {
    if (c.varlen()) {
      for (size_t s = 0; s < c.seqlens_q.size(); ++s) {
        c.seqlens_q[s] /= 2;
        c.seqlens_k[s] /= 2;
      }
      if (c.total_q() == 0) c.seqlens_q[0] = 1;
      if (c.total_k() == 0) c.seqlens_k[0] = 1;
    } else {
      int64_t& longer = c.seqlen_q >= c.seqlen_k ? c.seqlen_q : c.seqlen_k;
      longer = smaller(space.seqlens, longer);
    }
  };
  while (c.work() > space.max_work) {
    const int64_t ratio = c.heads_q / c.heads_kv;
    if (!c.varlen() && c.batch > 1) {
      --c.batch;
    } else if (longest() > 113) {
      shorten();
    } else if (c.heads_kv > 1) {
      c.heads_kv = 1;
      c.heads_q = ratio;
    } else if (std::max(c.dim_qk, c.dim_v) > 64) {
      c.dim_qk = std::min<int64_t>(c.dim_qk, 64);
      c.dim_v = std::min<int64_t>(c.dim_v, 64);
    } else if (longest() > 7) {
      shorten();
    } else if (std::max(c.dim_qk, c.dim_v) > 1) {
      c.dim_qk = smaller(dims_small, c.dim_qk);
      c.dim_v = smaller(dims_small, c.dim_v);
    } else {
      break;
    }
    if (c.packed_qkv && (c.seqlen_q != c.seqlen_k || c.dim_qk != c.dim_v)) c.packed_qkv = false;
  }
}

}  // namespace

Case random_case(std::string_view suite, uint64_t index, const RandomSpace& space) {
  Rng rng(case_seed(suite, index) ^ 0xca5e);
  Case c;
  c.suite = std::string(suite);
  c.index = index;
  c.dtype = rng.pick(space.dtypes);
  c.heads_kv = rng.pick<int64_t>({1, 1, 2, 3});
  const int64_t ratio = rng.pick<int64_t>({1, 1, 2, 4, 7, 32});
  if (ratio == 32) c.heads_kv = 1;
  c.heads_q = c.heads_kv * ratio;
  c.seqlen_q = rng.pick(space.seqlens);
  c.seqlen_k = rng.chance(0.3) ? c.seqlen_q : rng.pick(space.seqlens);
  c.dim_qk = rng.pick(space.head_dims);
  c.dim_v = rng.chance(0.7) ? c.dim_qk : rng.pick(space.head_dims);
  c.batch = rng.uniform_int(1, 3);
  c.mask = rng.pick(space.masks);
  if (space.features) {
    if (rng.chance(0.3)) c.o_dtype = rng.pick<DType>({DType::f32, DType::f16, DType::bf16});
    if (rng.chance(0.2)) c.scale = float(rng.uniform(0.05, 0.5));
    if (rng.chance(0.2)) c.softcap = float(rng.uniform(0.5, 10.0));
    c.alibi = rng.chance(0.2);
    c.sinks = rng.chance(0.2);
    c.lse = rng.chance(0.9);
    if (rng.chance(0.2)) c.input_scale = 2.5f;
    if (rng.chance(0.2)) c.num_threads = int(rng.uniform_int(1, 3));
  }
  if (space.varlen && rng.chance(0.25)) {
    const int64_t n = rng.uniform_int(1, 4);
    for (int64_t s = 0; s < n; ++s) {
      const auto sq = int32_t(rng.pick<int64_t>({0, 1, 7, 37, 113, 239}));
      const int32_t sk = rng.chance(0.4) ? sq : int32_t(rng.pick<int64_t>({0, 1, 7, 37, 113}));
      c.seqlens_q.push_back(sq);
      c.seqlens_k.push_back(sk);
    }
    if (c.total_q() == 0) c.seqlens_q[0] = 7;
    if (c.total_k() == 0) c.seqlens_k[0] = 7;
  }
  if (space.layouts && rng.chance(0.25)) {
    c.qkv_layout = random_layout(rng, true);
    c.o_layout = random_layout(rng, false);
    c.lse_layout = random_layout(rng, false);
    c.packed_qkv =
        !c.varlen() && c.seqlen_q == c.seqlen_k && c.dim_qk == c.dim_v && rng.chance(0.5);
  }
  fit_budget(c, space);
  return c;
}

}  // namespace polyhead::testing
