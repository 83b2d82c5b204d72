#include "cases.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <thread>

#include "args.h"
#include "polyhead/mask.h"
#include "rng.h"

namespace polyhead::cli {
namespace {

// Sizes that no tile divides, plus tile multiples and their neighbours.
constexpr int64_t kSizes[] = {1, 7, 37, 63, 64, 65, 113, 128, 239, 1023};
constexpr int64_t kHeadDims[] = {1, 8, 16, 40, 64, 80, 128};
// (Dqk, Dv) pairs GPU kernels are built for: cases with these reach the cuda backend, which
// refuses the awkward dims above.
constexpr int64_t kKernelHeadDims[][2] = {{64, 64}, {96, 96}, {128, 128}, {192, 128}, {256, 256}};
constexpr int64_t kHeads[][2] = {{1, 1}, {4, 4}, {4, 1}, {8, 2}, {6, 3}, {3, 1}};  // (Hq, Hkv)
constexpr DType kDTypes[] = {DType::f32, DType::f16, DType::bf16};

int64_t window_side(Rng& rng, int64_t extent) {
  const int64_t options[] = {0, 1, 3, 16, rng.below(extent + 1)};
  return rng.pick(options);
}

std::string dims_text(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t d = 0; d < v.size(); ++d) {
    if (d) s += "x";
    s += std::to_string(v[d]);
  }
  return s;
}

// The static kinds without geometry constraints (also the per-head sub-specs).
std::string static_form(int form, Rng& rng, const CaseSpec& c) {
  const auto side = [&] { return std::to_string(window_side(rng, c.seqlen_k)); };
  switch (form) {
    case 0:
      return "none";
    case 1:
      return "causal";
    case 2:
      return "causal:topleft";
    case 3:
      return "window:" + side() + "," + side();
    case 4:
      return "window:" + side() + "," + side() + ",topleft";
    case 5:
      return "window:-1," + side();
    case 6:
      return "window:" + side() + ",-1";
    case 7:  // StreamingLLM: a causal window plus the first N keys
      return "window:" + side() + ",0,sink=" + std::to_string(1 + rng.below(8));
    default: {
      const int64_t block_options[] = {1, 7, 16, 64};
      const int64_t vstride = 1 + rng.below(4);
      return "s2:block=" + std::to_string(rng.pick(block_options)) +
             ",local=" + std::to_string(1 + rng.below(3)) + ",vstride=" + std::to_string(vstride) +
             ",offset=" + std::to_string(rng.below(vstride)) +
             ",dense_heads=" + std::to_string(rng.below(c.heads_kv + 1)) +
             (rng.chance(3) ? ",homo=1" : "");
    }
  }
}

// Neighborhood attention over a 1-3 dimensional grid; sets Sq = Sk = the grid's token count.
std::string neighborhood_form(Rng& rng, CaseSpec& c) {
  const int rank = 1 + int(rng.below(3));
  const int64_t max_extent[] = {239, 15, 6};
  std::vector<int64_t> grid, kernel, dilation, stride, causal;
  for (int d = 0; d < rank; ++d) {
    grid.push_back(1 + rng.below(max_extent[rank - 1]));
    dilation.push_back(grid.back() >= 4 && rng.chance(3) ? 2 : 1);
    kernel.push_back(1 + rng.below(grid.back() / dilation.back()));
    stride.push_back(1 + rng.below(kernel.back()));
    causal.push_back(rng.below(2));
  }
  c.seqlen_q = c.seqlen_k =
      std::accumulate(grid.begin(), grid.end(), int64_t(1), std::multiplies<int64_t>());
  c.seqlens_q.clear();
  c.seqlens_k.clear();
  if (c.batch > 3) c.batch = 3;
  return "na:grid=" + dims_text(grid) + ",kernel=" + dims_text(kernel) +
         ",dilation=" + dims_text(dilation) + ",stride=" + dims_text(stride) +
         ",causal=" + dims_text(causal);
}

// Mask form `form` (0 <= form < kMaskForms) with random parameters fitted to the case.
void set_mask(int form, Rng& rng, CaseSpec& c) {
  const int64_t chunk_options[] = {1, 7, 16, 32};
  switch (form) {
    case 9:
      c.mask = neighborhood_form(rng, c);
      return;
    case 10: {  // one static spec per query head (MoA-style)
      c.mask = "heads:";
      for (int64_t h = 0; h < c.heads_q; ++h) {
        if (h) c.mask += "|";
        c.mask += static_form(int(rng.below(9)), rng, c);
      }
      return;
    }
    case 11: {
      const int64_t bq = rng.pick(chunk_options), bk = rng.pick(chunk_options);
      c.tensor_mask = CaseSpec::TensorMask::blocks;
      c.tensor_mask_params[0] = bq;
      c.tensor_mask_params[1] = bk;
      c.mask = "blocks:random,bq=" + std::to_string(bq) + ",bk=" + std::to_string(bk);
      return;
    }
    case 12:
      c.mask = "longheads:chunk=" + std::to_string(rng.pick(chunk_options)) +
               ",k=" + std::to_string(3 + rng.below(4));
      return;
    case 13:
      c.mask = "dhsa:chunk=" + std::to_string(rng.pick(chunk_options)) +
               ",k=" + std::to_string(rng.below(5)) +
               ",recent=" + std::to_string(rng.pick(chunk_options) - 1);
      return;
    case 14: {
      const int64_t k_options[] = {1, 4, 16}, window_options[] = {1, 16, 64, 300};
      const int64_t k = rng.pick(k_options), window = rng.pick(window_options);
      c.tensor_mask = CaseSpec::TensorMask::topk;
      c.tensor_mask_params[0] = k;
      c.tensor_mask_params[1] = window;
      c.mask =
          "topk:k=" + std::to_string(k) + ",window=" + std::to_string(window) + ",scores=random";
      return;
    }
    default:
      c.mask = static_form(form, rng, c);
  }
}

// Multiply-adds of the reference (f64 scalar loops): bounded so check stays fast.
int64_t work(const CaseSpec& c) {
  int64_t pairs = 0;
  if (c.varlen()) {
    for (size_t b = 0; b < c.seqlens_q.size(); ++b) pairs += c.seqlens_q[b] * c.seqlens_k[b];
  } else {
    pairs = c.batch * c.seqlen_q * c.seqlen_k;
  }
  return pairs * c.heads_q * (c.head_dim_qk + c.head_dim_v);
}

CaseSpec random_case(uint64_t seed, int index, bool kernel_dims) {
  Rng rng(seed, uint64_t(index) + (kernel_dims ? 1000003u : 0u));
  constexpr int64_t kWorkBudget = int64_t(3) << 20;
  CaseSpec c;
  do {
    c = CaseSpec{};
    c.name = std::string("#").append(std::to_string(index));
    c.dtype = kDTypes[(index / kMaskForms) % 3];
    c.batch = 1 + rng.below(3);
    c.seqlen_q = rng.pick(kSizes);
    c.seqlen_k = rng.chance(3) ? c.seqlen_q : rng.pick(kSizes);
    const auto& heads = kHeads[rng.below(std::size(kHeads))];
    c.heads_q = heads[0];
    c.heads_kv = heads[1];
    if (kernel_dims) {
      const auto& dims = kKernelHeadDims[rng.below(std::size(kKernelHeadDims))];
      c.head_dim_qk = dims[0];
      c.head_dim_v = dims[1];
    } else {
      c.head_dim_qk = rng.pick(kHeadDims);
      c.head_dim_v = rng.chance(2) ? c.head_dim_qk : rng.pick(kHeadDims);
    }
    if (rng.chance(4)) {  // varlen: 1-4 sequences, empty ones included
      const int64_t n = 1 + rng.below(4);
      for (int64_t b = 0; b < n; ++b) {
        c.seqlens_q.push_back(rng.chance(6) ? 0 : rng.pick(kSizes));
        c.seqlens_k.push_back(rng.chance(6) ? 0 : rng.pick(kSizes));
      }
      c.seqlens_q[0] = std::max<int64_t>(c.seqlens_q[0], 1);  // tensors need >= 1 token
      c.seqlens_k[0] = std::max<int64_t>(c.seqlens_k[0], 1);
      c.batch = n;
      c.seqlen_q = *std::max_element(c.seqlens_q.begin(), c.seqlens_q.end());
      c.seqlen_k = *std::max_element(c.seqlens_k.begin(), c.seqlens_k.end());
    }
    set_mask(index % kMaskForms, rng, c);
    if (rng.chance(5)) c.scale = float(0.05 + 0.5 * (rng.symmetric() + 1.0));
    if (rng.chance(3)) c.softcap = rng.chance(2) ? 1.0f : 5.0f;
    c.alibi = rng.chance(3);
    c.sinks = rng.chance(3);
    c.heads_major = rng.chance(4);
  } while (work(c) > kWorkBudget);
  return c;
}

// Unit-variance uniform values in [-sqrt(3), sqrt(3)), rounded to the tensor's dtype. Chunks of
// 2^16 elements draw from their own stream, so that large tensors fill on several threads and
// the values do not depend on the thread count.
void fill_uniform(HostTensor& t, uint64_t seed) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t n = t.numel(), chunks = (n + kChunk - 1) / kChunk;
  const auto work = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      Rng rng(seed, uint64_t(c));
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; ++i) {
        const float x = float(1.7320508075688772 * rng.symmetric());
        switch (t.dtype()) {
          case DType::bf16:
            static_cast<uint16_t*>(t.data())[i] = float_to_bf16(x);
            break;
          case DType::f16:
            static_cast<uint16_t*>(t.data())[i] = float_to_half(x);
            break;
          default:
            t.set(i, x);
        }
      }
    }
  };
  const int64_t threads =
      std::clamp<int64_t>(chunks / 64, 1, std::max(1u, std::thread::hardware_concurrency()));
  if (threads == 1) {
    work(0, chunks);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t w = 0; w < threads; ++w) {
    pool.emplace_back(work, chunks * w / threads, chunks * (w + 1) / threads);
  }
  for (std::thread& th : pool) th.join();
}

// Block bits [rows, nq, nk] of a benchmark block pattern, drawn per kv head from the pattern's
// seed (so that one pattern gives the same mask at every head dim and dtype).
void draw_block_pattern(const CaseSpec& spec, HostTensor& bits) {
  const BlockPattern& bp = spec.block_pattern;
  const int64_t rows = bits.shape()[0], nq = bits.shape()[1], nk = bits.shape()[2];
  const int64_t group = rows == 1 ? 1 : std::max<int64_t>(1, spec.heads_q / spec.heads_kv);
  uint8_t* out = static_cast<uint8_t*>(bits.data());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t g = r / group;
    if (r % group != 0) {  // query heads of one kv head share its pattern
      std::copy_n(out + (r - 1) * nq * nk, nq * nk, out + r * nq * nk);
      continue;
    }
    Rng rng(bp.seed, uint64_t(g));
    std::vector<int64_t> bucket;
    if (bp.kind == BlockPattern::Kind::hash_sparse) {
      for (int64_t b = 0; b < std::max(nq, nk); ++b) bucket.push_back(rng.below(bp.buckets));
    }
    const auto threshold = uint64_t(std::clamp(bp.keep, 0.0, 1.0) * 0x1.0p53);
    for (int64_t qb = 0; qb < nq; ++qb) {
      for (int64_t kb = 0; kb < nk; ++kb) {
        bool on = false;
        switch (bp.kind) {
          case BlockPattern::Kind::random:
            on = (rng.next() >> 11) < threshold;
            break;
          case BlockPattern::Kind::qk_sparse:
            on = kb == qb || (kb < qb && (rng.next() >> 11) < threshold);
            break;
          case BlockPattern::Kind::hash_sparse:
            on = kb == qb || (kb < qb && bucket[size_t(kb)] == bucket[size_t(qb)]);
            break;
        }
        out[(r * nq + qb) * nk + kb] = on ? 1 : 0;
      }
    }
  }
}

}  // namespace

std::string_view op_name(Op op) {
  switch (op) {
    case Op::fwd:
      return "fwd";
    case Op::bwd:
      return "bwd";
    case Op::decode:
      return "decode";
  }
  return "?";
}

int64_t CaseSpec::tensor_bytes() const {
  const int64_t b = tensor_batch(), e = dtype_size(dtype);
  return b * (total_q() * heads_q * head_dim_qk * e + total_k() * heads_kv * head_dim_qk * e +
              total_k() * heads_kv * head_dim_v * e + total_q() * heads_q * head_dim_v * 4 +
              heads_q * total_q() * 4);
}

int64_t CaseSpec::total_q() const {
  return varlen() ? std::accumulate(seqlens_q.begin(), seqlens_q.end(), int64_t(0)) : seqlen_q;
}

int64_t CaseSpec::total_k() const {
  return varlen() ? std::accumulate(seqlens_k.begin(), seqlens_k.end(), int64_t(0)) : seqlen_k;
}

std::vector<int64_t> CaseSpec::o_shape() const {
  return {tensor_batch(), total_q(), heads_q, head_dim_v};
}

std::vector<int64_t> CaseSpec::lse_shape() const {
  return {tensor_batch(), heads_q, total_q()};
}

std::string CaseSpec::shape_text() const {
  const auto list = [](const std::vector<int64_t>& xs) {
    std::string out;
    for (size_t b = 0; b < xs.size(); ++b) {
      if (b) out += ",";
      out += std::to_string(xs[b]);
    }
    return out;
  };
  // Appends, not "B" + std::to_string(...): GCC 12 warns falsely (-Wrestrict) on the latter.
  std::string s = "B";
  s += std::to_string(batch);
  if (varlen() && seqlens_q.size() > 3) {  // a packed batch of many documents
    s += " varlen " + std::to_string(seqlens_q.size()) + " seqs, " + std::to_string(total_q()) +
         (seqlens_q == seqlens_k ? "" : "/" + std::to_string(total_k())) + " tokens";
  } else if (varlen()) {
    s += " varlen q[" + list(seqlens_q) + "] k[" + list(seqlens_k) + "]";
  } else {
    s += " Sq" + std::to_string(seqlen_q) + " Sk" + std::to_string(seqlen_k);
  }
  s += " H" + std::to_string(heads_q) + "/" + std::to_string(heads_kv);
  s += " D" + std::to_string(head_dim_qk);
  if (head_dim_v != head_dim_qk) s += "/" + std::to_string(head_dim_v);
  return s;
}

std::string CaseSpec::describe() const {
  std::string s = shape_text() + " " + mask + " " + std::string(dtype_name(dtype));
  if (scale) s += " scale=" + std::to_string(*scale);
  if (softcap > 0.0f) s += " softcap=" + std::to_string(int(softcap));
  if (alibi) s += " alibi";
  if (sinks) s += " sinks";
  if (heads_major) s += " bhsd";
  return s;
}

std::vector<CaseSpec> check_cases(uint64_t seed, int count) {
  std::vector<CaseSpec> cases;
  for (int i = 0; i < count; ++i) cases.push_back(random_case(seed, i, false));
  // A third as many again with the head dims GPU kernels are built for, every mask form among
  // them, so that a GPU backend is checked on more than the few awkward-dim cases it accepts.
  for (int i = 0; i < count / 3; ++i) {
    CaseSpec c = random_case(seed, i + kMaskForms * (i % 3), true);  // every form, every dtype
    c.name = "#" + std::to_string(count + i);
    cases.push_back(c);
  }
  return cases;
}

CaseData::CaseData(const CaseSpec& spec, uint64_t seed, Fill fill) : spec_(spec) {
  Rng rng(seed);
  // Storage order [B, H, S, D] when heads_major, viewed as [B, S, H, D] by layout().
  const auto storage = [&](int64_t heads, int64_t tokens, int64_t dim) {
    const int64_t b = spec.tensor_batch();
    return spec.heads_major ? std::vector<int64_t>{b, heads, tokens, dim}
                            : std::vector<int64_t>{b, tokens, heads, dim};
  };
  const auto make = [&](HostTensor& t, HostTensor& t64, std::vector<int64_t> shape) {
    const uint64_t stream = rng.next();
    if (fill == Fill::none) return;
    t = HostTensor(spec.dtype, shape);
    fill_uniform(t, stream);
    if (fill != Fill::values_f64) return;
    t64 = HostTensor(DType::f64, shape);  // exact copies of the rounded values
    for (int64_t i = 0; i < t.numel(); ++i) t64.set(i, t.get(i));
  };
  make(q_, q64_, storage(spec.heads_q, spec.total_q(), spec.head_dim_qk));
  make(k_, k64_, storage(spec.heads_kv, spec.total_k(), spec.head_dim_qk));
  make(v_, v64_, storage(spec.heads_kv, spec.total_k(), spec.head_dim_v));
  if (spec.alibi) {  // the usual geometric slopes 2^(-8 (h + 1) / Hq)
    alibi_ = HostTensor(DType::f32, {spec.heads_q});
    for (int64_t h = 0; h < spec.heads_q; ++h) {
      alibi_.set(h, std::exp2(-8.0 * double(h + 1) / double(spec.heads_q)));
    }
  }
  if (spec.sinks) {
    sinks_ = HostTensor(DType::f32, {spec.heads_q});
    for (int64_t h = 0; h < spec.heads_q; ++h) sinks_.set(h, 0.5 + 1.5 * rng.symmetric());
  }
  if (spec.tensor_mask == CaseSpec::TensorMask::blocks &&
      (spec.block_pattern.per_head || spec.block_pattern.kind != BlockPattern::Kind::random)) {
    const int64_t bq = spec.tensor_mask_params[0], bk = spec.tensor_mask_params[1];
    mask_tensor_ =
        HostTensor(DType::u8, {spec.block_pattern.per_head ? spec.heads_q : 1,
                               (spec.seqlen_q + bq - 1) / bq, (spec.seqlen_k + bk - 1) / bk});
    draw_block_pattern(spec, mask_tensor_);
  } else if (spec.tensor_mask == CaseSpec::TensorMask::blocks) {
    // [1 or Hq, ceil(Sq / bq), ceil(Sk / bk)], about two blocks in three visible; with varlen
    // the longest sequence sets the extent (shorter ones ignore the trailing blocks).
    const int64_t bq = spec.tensor_mask_params[0], bk = spec.tensor_mask_params[1];
    mask_tensor_ =
        HostTensor(DType::u8, {rng.chance(2) ? 1 : spec.heads_q, (spec.seqlen_q + bq - 1) / bq,
                               (spec.seqlen_k + bk - 1) / bk});
    for (int64_t i = 0; i < mask_tensor_.numel(); ++i) mask_tensor_.set(i, rng.chance(3) ? 0 : 1);
  } else if (spec.tensor_mask == CaseSpec::TensorMask::topk) {
    // Selection scores: [B, Hkv, Sk], or [Hkv, total_k] for a packed batch.
    mask_tensor_ = spec.varlen()
                       ? HostTensor(DType::f32, {spec.heads_kv, spec.total_k()})
                       : HostTensor(DType::f32, {spec.batch, spec.heads_kv, spec.seqlen_k});
    for (int64_t i = 0; i < mask_tensor_.numel(); ++i) mask_tensor_.set(i, rng.symmetric());
  }
  if (spec.varlen()) {
    const auto offsets = [](HostTensor& t, const std::vector<int64_t>& lengths) {
      t = HostTensor(DType::i32, {int64_t(lengths.size()) + 1});
      int64_t total = 0;
      for (size_t b = 0; b < lengths.size(); ++b)
        t.set(int64_t(b) + 1, double(total += lengths[b]));
    };
    offsets(cu_q_, spec.seqlens_q);
    offsets(cu_k_, spec.seqlens_k);
  }
}

TensorView CaseData::layout(const HostTensor& t) const {
  return spec_.heads_major ? t.permuted_view({0, 2, 1, 3}) : t.view();
}

MaskSpec CaseData::mask() const {
  switch (spec_.tensor_mask) {
    case CaseSpec::TensorMask::blocks:
      return MaskSpec(BlockMask{MaskTensor{mask_tensor_.view(), nullptr, "random"},
                                spec_.tensor_mask_params[0], spec_.tensor_mask_params[1]});
    case CaseSpec::TensorMask::topk:
      return MaskSpec(TopKMask{spec_.tensor_mask_params[0], spec_.tensor_mask_params[1],
                               MaskTensor{mask_tensor_.view(), nullptr, "random"}});
    case CaseSpec::TensorMask::slices:
      return MaskSpec(SliceMask{spec_.slices});
    case CaseSpec::TensorMask::none:
      break;
  }
  return MaskSpec::parse(spec_.mask);
}

AttentionProblem CaseData::problem(const TensorView& o, const std::optional<TensorView>& lse,
                                   bool f64) const {
  return problem_on(layout(f64 ? q64_ : q_), layout(f64 ? k64_ : k_), layout(f64 ? v64_ : v_), o,
                    lse);
}

AttentionProblem CaseData::problem_on(const TensorView& q, const TensorView& k, const TensorView& v,
                                      const TensorView& o,
                                      const std::optional<TensorView>& lse) const {
  AttentionProblem p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.o = o;
  p.lse = lse;
  p.mask = mask();
  p.scale = spec_.scale;
  p.softcap = spec_.softcap;
  if (spec_.alibi) p.alibi_slopes = alibi_.view();
  if (spec_.sinks) p.sinks = sinks_.view();
  if (spec_.varlen()) {
    p.cu_seqlens_q = cu_q_.view();
    p.cu_seqlens_k = cu_k_.view();
  }
  return p;
}

}  // namespace polyhead::cli
