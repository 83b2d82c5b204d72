#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "bench.h"
#include "polyhead/attention.h"
#include "polyhead/block_map.h"
#include "polyhead/error.h"
#include "system.h"

namespace polyhead::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Smallest working set of the rotated input sets: larger than the last-level cache of common
// CPUs (tens of MiB), so that a small case reads its inputs from memory on every timed run, as
// it would inside a model, instead of from the cache the previous run left warm.
constexpr int64_t kRotationBytes = int64_t(96) << 20;
constexpr int kMaxSets = 16;
constexpr double kMinSeconds = 0.2;  // small cases repeat until this much time has passed
constexpr int kMinRuns = 3;          // long cases stop after max_seconds, with at least this many

// One input set with its outputs: o [B, Sq, Hq, Dv] f32 and lse [B, Hq, Sq] f32.
struct Set {
  Set(const CaseSpec& spec, uint64_t seed)
      : data(spec, seed, false),
        o(DType::f32, spec.o_shape()),
        lse(DType::f32, spec.lse_shape()),
        problem(data.problem(o.view(), lse.view(), false)) {}
  CaseData data;
  HostTensor o, lse;
  AttentionProblem problem;
};

double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

BenchResult start(const CaseSpec& spec, const BenchSettings& settings) {
  BenchResult r;
  r.spec = spec;
  r.backend = settings.backend;
  r.tensor_bytes = spec.tensor_bytes();
  return r;
}

int64_t tensor_bytes(const Set& set) {
  return set.data.input_bytes() + set.o.bytes();
}

bool out_of_memory(const std::exception& e) {
  const std::string m = e.what();
  return m.find("out of memory") != std::string::npos ||
         m.find("cudaErrorMemoryAllocation") != std::string::npos;
}

}  // namespace

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::oom:
      return "oom";
    case Outcome::unsupported:
      return "unsupported";
    case Outcome::error:
      return "error";
  }
  return "?";
}

bool ok(const BenchResult& r) {
  return r.outcome == Outcome::ok;
}

void count_case(const CaseSpec& spec, const CaseData& data, BenchResult& r) {
  const MaskSpec mask = data.mask();
  int64_t pairs = 0;
  if (mask.is_dynamic()) {  // the selection needs q and k: count on the filled inputs
    const HostTensor o(DType::f32, spec.o_shape()), lse(DType::f32, spec.lse_shape());
    pairs = unmasked_pairs(data.problem(o.view(), lse.view(), false));
  } else {
    // Static masks from their geometry alone: one compiled map per distinct sequence shape.
    std::vector<std::pair<int64_t, int64_t>> shapes;
    if (spec.varlen()) {
      for (size_t b = 0; b < spec.seqlens_q.size(); ++b) {
        shapes.emplace_back(spec.seqlens_q[b], spec.seqlens_k[b]);
      }
    } else {
      shapes.assign(size_t(spec.batch), {spec.seqlen_q, spec.seqlen_k});
    }
    std::map<std::pair<int64_t, int64_t>, int64_t> memo;
    for (const auto& shape : shapes) {
      auto it = memo.find(shape);
      if (it == memo.end()) {
        const MaskGeometry g{shape.first, shape.second, spec.heads_q, spec.heads_kv};
        const int64_t n = shape.first == 0 || shape.second == 0
                              ? 0
                              : BlockMap::compile(mask, g, {64, 64}).pair_count();
        it = memo.emplace(shape, n).first;
      }
      pairs += it->second;
    }
  }
  r.pairs = pairs;
  const double square = spec.varlen()
                            ? double(spec.total_q()) * double(spec.total_k())
                            : double(spec.batch) * double(spec.seqlen_q) * double(spec.seqlen_k);
  r.density = square > 0 ? double(pairs) / (double(spec.heads_q) * square) : 0.0;
  r.flops = 2.0 * double(spec.head_dim_qk + spec.head_dim_v) * double(pairs) *
            (spec.op == Op::bwd ? 2.5 : 1.0);
}

BenchResult time_case(const CaseSpec& spec, const BenchSettings& settings) {
  BenchResult r = start(spec, settings);
  // Refuse what cannot fit rather than let the kernel's OOM killer end the run.
  const int64_t need = r.tensor_bytes + spec.total_k() * spec.heads_kv * 8;
  if (const auto avail = memory_available_bytes(); avail && need > *avail) {
    r.outcome = Outcome::oom;
    r.reason = "needs " + std::to_string(need >> 20) + " MiB of q, k, v, o, lse; " +
               std::to_string(*avail >> 20) + " MiB available";
    return r;
  }
  std::vector<std::unique_ptr<Set>> sets;
  try {
    sets.push_back(std::make_unique<Set>(spec, 1));
    r.tensor_bytes = tensor_bytes(*sets[0]);
    count_case(spec, sets[0]->data, r);
    if (const Status st = supports(sets[0]->problem, settings.backend); !st) {
      r.outcome = Outcome::unsupported;
      r.reason = st.reason;
      return r;
    }
    const int64_t set_bytes = r.tensor_bytes + sets[0]->lse.bytes();
    const int64_t n_sets = std::clamp<int64_t>(kRotationBytes / set_bytes, 1, kMaxSets);
    while (int64_t(sets.size()) < n_sets) {
      sets.push_back(std::make_unique<Set>(spec, uint64_t(sets.size()) + 1));
    }

    const RunOptions options{.backend = settings.backend, .num_threads = settings.threads};
    const bool peak = reset_rss_peak();
    for (const auto& set : sets) attention(set->problem, options);  // warm-up: pages, threads
    const int repeats = spec.repeats > 0 ? spec.repeats : settings.repeats;
    std::vector<double> seconds;
    double total = 0.0;
    while (true) {
      const int runs = int(seconds.size());
      const bool enough = runs >= repeats || (runs >= kMinRuns && total >= settings.max_seconds);
      const bool too_short = total < kMinSeconds && runs < 100 * repeats;
      if (enough && !too_short) break;
      const Set& set = *sets[seconds.size() % sets.size()];
      const auto t0 = Clock::now();
      attention(set.problem, options);
      const std::chrono::duration<double> dt = Clock::now() - t0;
      seconds.push_back(dt.count());
      total += dt.count();
    }
    if (peak) r.peak_mem_bytes = rss_peak_bytes();
    std::sort(seconds.begin(), seconds.end());
    r.runs = int(seconds.size());
    r.median_s = quantile(seconds, 0.5);
    r.p20_s = quantile(seconds, 0.2);
    r.p80_s = quantile(seconds, 0.8);
    r.gflops = r.flops / r.median_s * 1e-9;
  } catch (const std::bad_alloc&) {
    r.outcome = Outcome::oom;
    r.reason = "out of host memory";
  } catch (const Error& e) {
    r.outcome = out_of_memory(e) ? Outcome::oom : Outcome::error;
    r.reason = e.what();
  }
  return r;
}

namespace {

// What the memory child sends back through its pipe.
struct ChildReport {
  int ok = 0;
  double seconds = 0.0, flops = 0.0;
  int64_t peak_rss = 0, tensor_bytes = 0;
  char message[512] = {};
};

[[noreturn]] void child_main(const CaseSpec& spec, const BenchSettings& settings, int fd) {
  ChildReport rep;
  try {
    const Set set(spec, 1);
    rep.tensor_bytes = tensor_bytes(set);
    const Status st = supports(set.problem, settings.backend);
    if (!st) throw Error(st.reason);
    rep.flops = forward_flops(set.problem);
    const auto t0 = Clock::now();
    attention(set.problem, {.backend = settings.backend, .num_threads = settings.threads});
    const std::chrono::duration<double> dt = Clock::now() - t0;
    rep.seconds = dt.count();
    rep.peak_rss = peak_rss_bytes();
    rep.ok = 1;
  } catch (const std::exception& e) {
    std::strncpy(rep.message, e.what(), sizeof rep.message - 1);
  }
  const ssize_t written = write(fd, &rep, sizeof rep);
  _exit(written == ssize_t(sizeof rep) ? 0 : 1);
}

}  // namespace

BenchResult measure_memory_case(const CaseSpec& spec, const BenchSettings& settings) {
  BenchResult r = start(spec, settings);
  int fds[2];
  if (pipe(fds) != 0) throw UsageError(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) throw UsageError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    child_main(spec, settings, fds[1]);
  }
  close(fds[1]);
  ChildReport rep;
  size_t got = 0;
  while (got < sizeof rep) {
    const ssize_t n = read(fds[0], reinterpret_cast<char*>(&rep) + got, sizeof rep - got);
    if (n <= 0) break;
    got += size_t(n);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != sizeof rep) {
    // SIGKILL is the kernel's out-of-memory killer in practice.
    r.outcome = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? Outcome::oom : Outcome::error;
    r.reason = WIFSIGNALED(status)
                   ? "the child process died of signal " + std::to_string(WTERMSIG(status))
                   : "the child process reported nothing";
    return r;
  }
  if (!rep.ok) {
    r.outcome = Outcome::unsupported;
    r.reason = rep.message;
    return r;
  }
  r.runs = 1;
  r.median_s = r.p20_s = r.p80_s = rep.seconds;
  r.flops = rep.flops;
  r.pairs = int64_t(rep.flops / (2.0 * double(spec.head_dim_qk + spec.head_dim_v)));
  r.gflops = r.flops / r.median_s * 1e-9;
  r.tensor_bytes = rep.tensor_bytes;
  r.peak_rss_bytes = rep.peak_rss;
  return r;
}

}  // namespace polyhead::cli
