#include "support/testing.h"

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>

#ifdef POLYHEAD_HAVE_CUDA
#include "support/device.h"
#endif

namespace polyhead::testing {

Expected reference_outputs(const AttentionProblem& a) {
  const HostTensor q = copy_to_f64(a.q), k = copy_to_f64(a.k), v = copy_to_f64(a.v);
  Expected e;
  e.o = HostTensor(DType::f64, {a.q.shape[0], a.q.shape[1], a.q.shape[2], a.v.shape[3]});
  e.lse = HostTensor(DType::f64, {a.q.shape[0], a.q.shape[2], a.q.shape[1]});
  AttentionProblem r = a;
  r.q = q.view();
  r.k = k.view();
  r.v = v.view();
  r.o = e.o.view();
  r.lse = e.lse.view();
  RunOptions options;
  options.backend = "reference";
  attention(r, options);
  return e;
}

std::string backend_unavailable(std::string_view backend) {
  if (backend == "auto") return "";
  for (const BackendInfo& b : backends()) {
    if (b.name == backend) return b.available ? "" : b.name + " is unavailable: " + b.description;
  }
  return "backend '" + std::string(backend) + "' is not compiled into this build";
}

namespace {

RunResult run_on_cuda([[maybe_unused]] Problem& p, [[maybe_unused]] int num_threads) {
#ifndef POLYHEAD_HAVE_CUDA
  return {false, "this build has no CUDA (POLYHEAD_CUDA=OFF)"};
#else
  if (std::string why = device::unavailable_reason(); !why.empty()) return {false, why};
  const Device dev{DeviceType::cuda, device::current_device()};
  std::deque<device::Buffer> buffers;  // a deque: buffers never move once made
  auto upload = [&](const HostTensor& t) {
    device::Buffer& b = buffers.emplace_back(t.storage_bytes());
    b.upload(t.storage());
    return t.view_at(b.get(), dev);
  };
  AttentionProblem a = p.view();
  a.q = upload(p.q);
  a.k = upload(p.k);
  a.v = upload(p.v);
  a.o = upload(p.o);  // carries the canary
  device::Buffer* o_buffer = &buffers.back();
  device::Buffer* lse_buffer = nullptr;
  if (!p.lse.empty()) {
    a.lse = upload(p.lse);
    lse_buffer = &buffers.back();
  }
  if (!p.cu_seqlens_q.empty()) {  // on the device, as FlashAttention's callers pass them
    a.cu_seqlens_q = upload(p.cu_seqlens_q);
    a.cu_seqlens_k = upload(p.cu_seqlens_k);
  }
  if (!p.alibi_slopes.empty()) a.alibi_slopes = upload(p.alibi_slopes);
  if (!p.sinks.empty()) a.sinks = upload(p.sinks);

  const Status st = supports(a, "cuda");
  if (!st) return {false, "backend 'cuda' does not support the case: " + st.reason};
  RunOptions options;
  options.backend = "cuda";
  options.num_threads = num_threads;
  attention(a, options);
  device::synchronize();
  o_buffer->download(p.o.storage());
  if (lse_buffer) lse_buffer->download(p.lse.storage());
  return {true, {}};
#endif
}

}  // namespace

RunResult run_on_backend(Problem& p, std::string_view backend, int num_threads) {
  p.o.fill_canary();
  if (!p.lse.empty()) p.lse.fill_canary();
  if (backend == "cuda") return run_on_cuda(p, num_threads);
  const AttentionProblem a = p.view();
  const Status st = supports(a, backend);
  if (!st)
    return {false,
            "backend '" + std::string(backend) + "' does not support the case: " + st.reason};
  RunOptions options;
  options.backend = std::string(backend);
  options.num_threads = num_threads;
  attention(a, options);
  return {true, {}};
}

CaseResult check_case(const Case& c, std::string_view backend) {
  CaseResult r;
  const std::string header = "backend " + std::string(backend) + ", " + c.describe() + "\n";
  try {
    Problem p = make_problem(c);
    const RunResult run = run_on_backend(p, backend, c.num_threads);
    if (!run.ran) {
      r.kind = CaseResult::skipped;
      r.message = header + run.skip_reason;
      return r;
    }
    const Expected e = reference_outputs(p.view());
    const Tolerance tol = tolerance(backend, c);
    r.verdict = compare_outputs(p, e.o, e.lse, tol);
    r.kind = r.verdict.ok ? CaseResult::passed : CaseResult::failed;
    r.message = header + r.verdict.detail + "relative L2 errors: o " +
                std::to_string(r.verdict.o_error) + " (tolerance " + std::to_string(tol.o) +
                "), lse " + std::to_string(r.verdict.lse_error) + " (tolerance " +
                std::to_string(tol.lse) + ")";
    // POLYHEAD_TEST_ERRORS=1 prints every case's errors: the data behind the tolerances.
    if (std::getenv("POLYHEAD_TEST_ERRORS")) {
      std::printf("errors o=%.3e lse=%.3e %s", r.verdict.o_error, r.verdict.lse_error,
                  header.c_str());
    }
  } catch (const std::exception& e) {
    r.kind = CaseResult::failed;
    r.message = header + "threw: " + e.what();
  }
  return r;
}

Summary expect_cases(std::string_view backend, const std::vector<Case>& cases) {
  Summary s;
  for (const Case& c : cases) {
    const CaseResult r = check_case(c, backend);
    switch (r.kind) {
      case CaseResult::passed:
        ++s.passed;
        break;
      case CaseResult::failed:
        ++s.failed;
        ADD_FAILURE() << r.message;
        break;
      case CaseResult::skipped:
        if (s.skipped++ == 0) s.skip_reason = r.message;
        break;
    }
  }
  if (s.skipped > 0 && s.passed + s.failed > 0) {  // partial coverage: say so in the log
    std::printf("[   NOTE   ] %d of %zu cases skipped on backend %s; the first: %s\n", s.skipped,
                cases.size(), std::string(backend).c_str(), s.skip_reason.c_str());
  }
  return s;
}

bool mask_allows(const MaskSpec& spec, int64_t seqlen_q, int64_t seqlen_k, int64_t i, int64_t j) {
  if (spec.is_none()) return true;
  const auto* w = spec.get_if<WindowMask>();
  if (w == nullptr) throw std::invalid_argument("mask_allows: unknown mask kind");
  const int64_t pos = w->align == Alignment::top_left ? i : i + seqlen_k - seqlen_q;
  const int64_t d = j - pos;  // small: no overflow even for huge windows
  const bool right_ok = w->right < 0 || d <= w->right;
  const bool in_window = (w->left < 0 || -d <= w->left) && right_ok;
  const bool in_sink = j < w->sink && right_ok;  // StreamingLLM's first keys
  return in_window || in_sink;
}

}  // namespace polyhead::testing
