#include "verify.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <set>
#include <vector>

#include "args.h"
#include "device.h"
#include "polyhead/block_map.h"
#include "polyhead/error.h"

namespace polyhead::cli {

double tolerance(DType t) {
  return relative_l2_tolerance(t);
}

double rel_l2(const HostTensor& out, const HostTensor& ref) {
  double num = 0.0, den = 0.0;
  bool inf_mismatch = false;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double r = ref.get(i), x = out.get(i);
    if (std::isnan(r) || std::isnan(x)) return std::numeric_limits<double>::quiet_NaN();
    if (std::isinf(r) || std::isinf(x)) {
      inf_mismatch |= r != x;
      continue;
    }
    num += (x - r) * (x - r);
    den += r * r;
  }
  if (inf_mismatch) return std::numeric_limits<double>::infinity();
  if (den == 0.0) return num == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(num / den);
}

HostTensor poisoned(DType dtype, const std::vector<int64_t>& shape) {
  HostTensor t(dtype, shape);
  t.fill(std::numeric_limits<double>::quiet_NaN());
  return t;
}

Status run_anywhere(const AttentionProblem& host, const RunOptions& options) {
  if (!backend_needs_device(options.backend)) {
    if (const Status st = supports(host, options.backend); !st) return st;
    attention(host, options);
    return Status::yes();
  }
  const DeviceMirror mirror(host);
  if (const Status st = supports(mirror.problem(), options.backend); !st) return st;
  attention(mirror.problem(), options);
  mirror.copy_outputs_back(host);
  return Status::yes();
}

namespace {

// Multiply-adds of the fp64 reference on a case (dense bound; double: 128k tokens overflow int64).
double dense_work(const CaseSpec& c) {
  const double rows = c.varlen() ? double(c.total_q()) : double(c.batch) * double(c.seqlen_q);
  const double keys = c.varlen() ? double(c.total_k()) : double(c.seqlen_k);
  return rows * keys * double(c.heads_q) * double(c.head_dim_qk + c.head_dim_v);
}

}  // namespace

CaseSpec verify_instance(const CaseSpec& spec, std::string* what) {
  if (dense_work(spec) <= double(kVerifyBudget)) {
    *what = "the case itself";
    return spec;
  }
  if (!spec.rescale) {
    *what = "";
    return spec;
  }
  // Fewer heads at the same GQA ratio (one kv head), batch 1, else one head; then the largest
  // length that fits: halvings of S first, then squares and cubes (for the neighborhoods).
  const int64_t length = spec.total_k();  // a packed batch of documents is one sequence
  std::vector<int64_t> lengths;
  for (int64_t s = length; s >= 16; s /= 2) lengths.push_back(s);
  std::set<int64_t, std::greater<>> powers;
  for (int64_t k = 4; k <= 256; ++k) {
    if (k * k <= length) powers.insert(k * k);
    if (k * k * k <= length) powers.insert(k * k * k);
  }
  lengths.insert(lengths.end(), powers.begin(), powers.end());
  for (const int64_t hq : {spec.heads_q / spec.heads_kv, int64_t(1)}) {
    for (int64_t s : lengths) {
      const int64_t sq = spec.op == Op::decode ? std::min(spec.seqlen_q, s) : s;
      if (double(sq) * double(s) * double(hq * (spec.head_dim_qk + spec.head_dim_v)) >
          double(kVerifyBudget)) {
        continue;
      }
      try {
        CaseSpec small = spec.rescale(s, hq, 1, 1);
        // The mask must fit the smaller size too (e.g. a neighborhood kernel within its grid).
        const MaskSpec m = CaseData(small, 1, CaseData::Fill::none).mask();
        if (!m.is_dynamic()) {
          BlockMap::compile(m, {small.seqlen_q, small.seqlen_k, hq, 1}, {64, 64});
        }
        *what = "a scaled-down instance (" + small.shape_text() +
                "; the case itself is too large for the fp64 reference)";
        return small;
      } catch (const std::exception&) {
        // the pattern does not fit this size; try the next
      }
    }
  }
  *what = "";
  return spec;
}

VerifyResult verify_case(const CaseSpec& spec, const std::string& backend, int threads) {
  VerifyResult v;
  const CaseSpec c = verify_instance(spec, &v.instance);
  if (v.instance.empty()) {
    v.note = "not run: no instance of the case small enough for the fp64 reference";
    return v;
  }
  v.tol = tolerance(c.dtype);
  try {
    const CaseData data(c, 12345, true);
    // The backend first: a refusal costs no reference run.
    const HostTensor o = poisoned(DType::f32, c.o_shape()),
                     lse = poisoned(DType::f32, c.lse_shape());
    const Status st = run_anywhere(data.problem(o.view(), lse.view(), false),
                                   {.backend = backend, .num_threads = threads});
    if (!st) {
      v.note = "not run: " + st.reason;
      return v;
    }
    const HostTensor o_ref = poisoned(DType::f64, c.o_shape());
    const HostTensor lse_ref = poisoned(DType::f64, c.lse_shape());
    attention(data.problem(o_ref.view(), lse_ref.view(), true), {.backend = "reference"});
    v.o_err = rel_l2(o, o_ref);
    v.lse_err = rel_l2(lse, lse_ref);
    v.passed = v.o_err <= v.tol && v.lse_err <= v.tol;
  } catch (const std::bad_alloc&) {
    v.note = "not run: out of host memory for the check";
  } catch (const std::exception& e) {
    v.note = e.what();
  }
  return v;
}

}  // namespace polyhead::cli
