// polyhead bench: the case grid of cases.cpp on one backend, against an sgemm ceiling measured
// in the same run (DESIGN.md section 7).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "bench.h"
#include "commands.h"
#include "polyhead/attention.h"
#include "system.h"

namespace polyhead::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: polyhead bench [--backend cpu] [--preset quick|default|full] [--threads N]
                      [--repeats N] [--case SUBSTRING] [--json FILE]

Times attention forward cases (a warm-up, then the median and 20%/80% quantiles of the timed
runs on a steady clock; small cases rotate between input sets so that they do not run from
cache) and reports GFLOP/s from polyhead::forward_flops (2 (Dqk + Dv) per unmasked (i, j)
pair and query head: masks are credited only for the work they leave), and its ratio to the
GFLOP/s of a square OpenBLAS cblas_sgemm measured in the same run on the same threads.

presets (times on 2 cores):
  quick     3 cases at S = 1024; a few seconds
  default   fp32 dense and causal at S = 2048, D = 128 (the target: >= 60% of sgemm, causal
            about half the dense time), bf16, fp16, GQA, a sliding window, small batched
            and decode cases; 20-30 seconds
  full      default plus S = 8192 and D = 64/256 cases and the peak-memory case (fp32,
            S = 32768, H = 8, D = 128, causal, run once in a child process; its peak resident
            memory is reported against the bytes of q, k, v, o); about 3 minutes

options:
  --backend NAME   backend to time (default cpu)
  --preset P       quick | default | full (default: default)
  --threads N      threads for the backend and the sgemm ceiling (default: OpenMP's default)
  --repeats N      timed runs per case (default 10; small cases run on until 0.2 s have
                   passed, cases past 10 s stop after 3 runs)
  --case TEXT      only the cases whose name contains TEXT
  --json FILE      write every case's figures as JSON
)";

constexpr OptionDef kOptions[] = {{"backend"}, {"preset"}, {"threads"},
                                  {"repeats"}, {"case"},   {"json"}};

// Square sgemm size: 2048^3 takes ~0.1 s at 150 GFLOP/s and already runs at OpenBLAS's peak.
// The ceiling is measured before and after the cases and the higher figure kept, so that a
// burst of other work on a shared machine does not lower it (and flatter the ratios).
constexpr int kSgemmN = 2048;
constexpr int kSgemmRuns = 5;

void progress(size_t i, size_t n, const CaseSpec& c) {
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "[%zu/%zu] %s\n", i + 1, n, c.name.c_str());
}

}  // namespace

int cmd_bench(Words words) {
  const Args args = Args::parse(words, kOptions);
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  BenchRun run;
  run.preset = args.choice("preset", "default", kBenchPresets);
  run.settings.backend = args.str("backend", "cpu");
  run.settings.threads = int(args.integer("threads", default_threads(), 1, 4096));
  run.settings.repeats = int(args.integer("repeats", 10, 1, 100000));
  const std::string filter = args.str("case", "");

  std::vector<CaseSpec> cases;
  for (CaseSpec& c : bench_cases(run.preset)) {
    if (c.name.find(filter) != std::string::npos) cases.push_back(std::move(c));
  }
  if (cases.empty()) {
    throw UsageError("--case = '" + filter + "' matches no case of preset '" + run.preset + "'");
  }
  bool known = false;
  for (const BackendInfo& b : backends()) {
    if (b.name != run.settings.backend) continue;
    known = true;
    if (!b.available) {
      throw UsageError("backend '" + b.name + "' is not available here: " + b.description);
    }
  }
  if (!known) throw UsageError("--backend = '" + run.settings.backend + "' is not a backend");

  run.load_before = load_average();
  // Memory cases first: they fork, and must do so before this process starts OpenMP threads.
  std::vector<std::optional<BenchResult>> results(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    if (!cases[i].memory) continue;
    progress(i, cases.size(), cases[i]);
    results[i] = measure_memory_case(cases[i], run.settings);
  }
  run.sgemm_n = kSgemmN;
  run.sgemm_before = sgemm_gflops(run.settings.threads, kSgemmN, kSgemmRuns);
  for (size_t i = 0; i < cases.size(); ++i) {
    if (results[i]) continue;
    progress(i, cases.size(), cases[i]);
    results[i] = time_case(cases[i], run.settings);
  }
  for (auto& r : results) run.results.push_back(std::move(*r));
  run.sgemm_after = sgemm_gflops(run.settings.threads, kSgemmN, kSgemmRuns);
  if (run.sgemm_before && run.sgemm_after) {
    run.sgemm_gflops = std::max(*run.sgemm_before, *run.sgemm_after);
  }
  run.load_after = load_average();

  for (BenchResult& r : run.results) {
    if (!r.skipped.empty()) continue;
    if (run.sgemm_gflops) r.ceiling_ratio = r.gflops / *run.sgemm_gflops;
    for (const BenchResult& b : run.results) {
      if (b.spec.name == r.spec.baseline && b.skipped.empty()) {
        r.baseline_time_ratio = r.median_s / b.median_s;
      }
    }
  }

  const CpuInfo cpu = cpu_info();
  std::printf("polyhead %s bench, preset %s, backend %s, %d threads, %s\n", version().c_str(),
              run.preset.c_str(), run.settings.backend.c_str(), run.settings.threads,
              cpu.model.c_str());
  if (run.load_before && run.load_after) {
    // Before the run the load is others' alone; after it, it includes this run's threads.
    const bool contended =
        *run.load_before > 1.0 || *run.load_after > double(run.settings.threads) + 1.0;
    std::printf("load average %.2f before, %.2f after%s\n", *run.load_before, *run.load_after,
                contended ? ": other processes competed for the cores, timings are low" : "");
  }
  if (run.sgemm_gflops) {
    std::printf(
        "ceiling: OpenBLAS cblas_sgemm %dx%dx%d on %d threads: %.1f GFLOP/s (median of %d; %.1f "
        "before the cases, %.1f after)\n\n",
        kSgemmN, kSgemmN, kSgemmN, run.settings.threads, *run.sgemm_gflops, kSgemmRuns,
        *run.sgemm_before, *run.sgemm_after);
  } else {
    std::printf("ceiling: n/a (this build has no OpenBLAS)\n\n");
  }
  print_table(run);
  if (const auto path = args.get("json")) {
    write_json(run, *path);
    std::printf("\nwrote %s\n", path->c_str());
  }
  return 0;
}

}  // namespace polyhead::cli
