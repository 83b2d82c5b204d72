// polyhead bench: a benchmark grid (grid.h; the Long-Context Attention Benchmark's masks and the
// seed papers') on one backend, against an sgemm ceiling measured in the same run on the CPU
// (DESIGN.md section 7); `polyhead bench compare` sets results beside the peers'.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "args.h"
#include "bench.h"
#include "commands.h"
#include "grid.h"
#include "polyhead/attention.h"
#include "system.h"

namespace polyhead::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: polyhead bench [--preset P | --grid FILE] [--backend cpu|cuda] [--verify]
                      [--case TEXT] [--op fwd|bwd|decode] [--threads N] [--repeats N]
                      [--max-seconds S] [--json FILE] [--export DIR] [--list]
       polyhead bench compare FILE... [--markdown FILE] [--json FILE]

Times attention on a grid of cases: a warm-up, then the median and 20%/80% quantiles of the
timed runs (CPU: steady clock, inputs rotated so that small cases do not run from cache; GPU:
CUDA events, L2 flushed before each call), throughput from polyhead's mask-aware FLOP count
(2 (Dqk + Dv) per visible (i, j) pair and query head; backward 2.5x), peak memory of the call
(CPU: resident set high-water mark; GPU: the device memory pool's), and on the CPU the ratio to
an OpenBLAS sgemm measured in the same run. Out of memory is recorded as -1, unsupported as -2
with the reason (as in LongCA-bench); backward cases are unsupported today (no backward
kernel) and are in the grids for the peers. A progress line per case goes to stderr.

grids (bench/grids/*.json, compiled in; bench/grids/README.md gives the format and the masks):
  default   the CPU targets: fp32 dense and causal at S = 2048, D = 128 (>= 60% of sgemm, causal
            about half the dense time), bf16, fp16, GQA, a window, batched and decode cases;
            about 10 s on 2 cores (the grid when no --preset or --grid is given)
  quick     LongCA-bench's 14 masks and the seed papers' (NA 1/2/3-D, S2, MoA, LongHeads,
            DHSA, top-k) at S = 1024-2048, forward, backward and decode; under a minute on a
            laptop CPU (30-45 s on 2 cores, --verify included)
  cpu-full  default plus S = 8192, D = 64/256 and the peak-memory case (a child process,
            S = 32768); about 3 minutes on 2 cores
  cpu-sparse  window 1024, NA 1/2/3-D, S2 and a block mask at 16k-32k tokens beside the dense
            run of the same shape (the sparse targets); about 30 s on 2 cores
  gpu       the LongCA grid on one GPU: S = 4k-32k, D = 128, GQA 64/8, bf16, with head dims
            64/256, MHA, a sparsity sweep, decode and backward; with the peers under 5 minutes
            on one H200 (scripts/gpu-bench)
  full      S = 1k-128k, D = 64/128/256, MHA and GQA 64/8, forward, backward and decode

options:
  --preset P       one of the grids above (default: default)
  --grid FILE      a grid file of your own instead
  --backend NAME   cpu (default) or cuda (inputs copied to the GPU; block maps and cu_seqlens
                   stay on the host)
  --verify         before timing, compare each case with the fp64 reference backend: the case
                   itself when the reference can run it in about a second, else a scaled-down
                   instance of the same pattern (said in the output); prints [OK] / [FAIL] and
                   exits 1 on a failure
  --verify-only    the checks of --verify without the timing (no table, no --json)
  --case TEXT      only the cases whose name contains TEXT
  --op OP          only fwd, bwd or decode cases
  --threads N      CPU threads for the backend and the sgemm ceiling (default: OpenMP's)
  --repeats N      timed runs per case (default 10; a grid may set its own; small cases run on
                   until 0.2 s (CPU) have passed)
  --max-seconds S  stop a case after 3 runs once it has taken S seconds (default 10)
  --json FILE      write every case's figures (format polyhead-bench/1)
  --export DIR     write the cases for the peers (bench/anchors/) to DIR and exit
  --list           print the cases of the grid and exit
)";

constexpr OptionDef kOptions[] = {{"backend"},
                                  {"preset"},
                                  {"grid"},
                                  {"threads"},
                                  {"repeats"},
                                  {"case"},
                                  {"op"},
                                  {"json"},
                                  {"max-seconds"},
                                  {"export"},
                                  {"verify", false},
                                  {"list", false},
                                  {"verify-only", false}};

// Square sgemm size: 2048^3 takes ~0.1 s at 150 GFLOP/s and already runs at OpenBLAS's peak.
// The ceiling is measured before and after the cases and the higher figure kept, so that a
// burst of other work on a shared machine does not lower it (and flatter the ratios).
constexpr int kSgemmN = 2048;
constexpr int kSgemmRuns = 5;

void progress(size_t i, size_t n, const CaseSpec& c, const std::string& what) {
  std::fprintf(stderr, "polyhead bench: [%zu/%zu] %s%s\n", i + 1, n, c.name.c_str(), what.c_str());
  std::fflush(stderr);
}

BenchGrid select_cases(const Args& args) {
  if (args.has("grid") && args.has("preset")) {
    throw UsageError("give --preset or --grid, not both");
  }
  BenchGrid grid = args.has("grid") ? load_grid_file(*args.get("grid"))
                                    : load_grid_preset(args.str("preset", "default"));
  const std::string filter = args.str("case", "");
  constexpr std::string_view kOps[] = {"fwd", "bwd", "decode", "all"};
  const std::string op = args.choice("op", "all", kOps);
  std::vector<CaseSpec> kept;
  for (CaseSpec& c : grid.cases) {
    if (c.name.find(filter) == std::string::npos) continue;
    if (op != "all" && op_name(c.op) != op) continue;
    kept.push_back(std::move(c));
  }
  if (kept.empty()) {
    throw UsageError("--case = '" + filter + "' (--op " + op + ") matches no case of " +
                     grid.source);
  }
  grid.cases = std::move(kept);
  return grid;
}

void check_backend(const std::string& name) {
  for (const BackendInfo& b : backends()) {
    if (b.name != name) continue;
    if (!b.available)
      throw UsageError("backend '" + b.name + "' is not available here: " + b.description);
    return;
  }
  throw UsageError("--backend = '" + name + "' is not a backend");
}

void print_header(const BenchRun& run) {
  std::printf("polyhead %s bench, grid %s (%s), backend %s, %d threads, %s%s\n", version().c_str(),
              run.grid.c_str(), run.grid_source.c_str(), run.settings.backend.c_str(),
              run.settings.threads, cpu_info().model.c_str(),
              run.device.empty() ? "" : (", " + run.device).c_str());
  if (run.load_before && run.load_after) {
    // Before the run the load is others' alone; after it, it includes this run's threads.
    const bool contended =
        *run.load_before > 1.0 || *run.load_after > double(run.settings.threads) + 1.0;
    std::printf("load average %.2f before, %.2f after%s\n", *run.load_before, *run.load_after,
                contended && run.settings.backend != "cuda"
                    ? ": other processes competed for the cores, timings are low"
                    : "");
  }
  if (run.sgemm_gflops) {
    std::printf(
        "ceiling: OpenBLAS cblas_sgemm %dx%dx%d on %d threads: %.1f GFLOP/s (median of %d; %.1f "
        "before the cases, %.1f after)\n",
        kSgemmN, kSgemmN, kSgemmN, run.settings.threads, *run.sgemm_gflops, kSgemmRuns,
        *run.sgemm_before, *run.sgemm_after);
  } else if (run.settings.backend != "cuda") {
    std::printf("ceiling: n/a (this build has no OpenBLAS)\n");
  }
  std::printf("%zu cases in %.1f s\n\n", run.results.size(), run.seconds);
}

}  // namespace

int cmd_bench(Words words) {
  if (!words.empty() && words[0] == "compare") return cmd_bench_compare(words.subspan(1));
  const Args args = Args::parse(words, kOptions);
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  BenchRun run;
  run.settings.backend = args.str("backend", "cpu");
  run.settings.threads = int(args.integer("threads", default_threads(), 1, 4096));
  run.settings.repeats = int(args.integer("repeats", 10, 1, 100000));
  const bool verify_only = args.has("verify-only");
  run.settings.verify = args.has("verify") || verify_only;
  if (verify_only && args.has("json")) throw UsageError("--verify-only times nothing: no --json");
  if (const auto s = args.number("max-seconds")) {
    if (*s <= 0.0) throw UsageError("--max-seconds must be > 0");
    run.settings.max_seconds = *s;
  }
  BenchGrid grid = select_cases(args);
  run.grid = grid.name;
  run.grid_source = grid.source;
  run.grid_description = grid.description;
  if (const char* c = std::getenv("POLYHEAD_COMMIT")) run.commit = c;

  if (args.has("list")) {
    for (const CaseSpec& c : grid.cases) {
      std::printf("%-48s %-6s %s\n", c.name.c_str(), std::string(op_name(c.op)).c_str(),
                  c.describe().c_str());
    }
    return 0;
  }
  if (const auto dir = args.get("export")) {
    const int n = export_cases(grid.cases, grid.name, *dir);
    std::printf("exported %d cases of %s to %s\n", n, grid.source.c_str(), dir->c_str());
    return 0;
  }
  check_backend(run.settings.backend);
  const bool gpu = run.settings.backend == "cuda";
  if (const auto path = args.get("json")) {  // fail now, not after the run
    std::ofstream probe(*path, std::ios::app);
    if (!probe) throw UsageError("'" + *path + "': cannot write the JSON report");
  }

  const auto t0 = std::chrono::steady_clock::now();
  run.load_before = load_average();
  const std::vector<CaseSpec>& cases = grid.cases;
  std::vector<std::optional<BenchResult>> results(cases.size());
  // Memory cases first: they fork, and must do so before this process starts OpenMP threads.
  for (size_t i = 0; i < cases.size(); ++i) {
    if (!cases[i].memory || gpu) continue;
    progress(i, cases.size(), cases[i], " (peak memory, in a child process)");
    results[i] = measure_memory_case(cases[i], run.settings);
  }
  if (gpu) {
    run.device = cuda_device_name();
  } else {
    run.sgemm_n = kSgemmN;
    run.sgemm_before = sgemm_gflops(run.settings.threads, kSgemmN, kSgemmRuns);
  }
  bool failed = false;
  if (verify_only) {
    std::printf(
        "polyhead %s bench --verify-only, grid %s, backend %s: against the fp64 reference\n",
        version().c_str(), run.grid_source.c_str(), run.settings.backend.c_str());
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    if (results[i]) continue;
    const CaseSpec& c = cases[i];
    std::optional<VerifyResult> verified;
    if (run.settings.verify && c.op != Op::bwd) {
      verified = verify_case(c, run.settings.backend, run.settings.threads);
      const bool bad = !verified->passed && verified->note.rfind("not run", 0) != 0;  // [SKIP]
      failed |= bad;
      progress(i, cases.size(), c,
               verified->passed ? " [OK]"
               : bad            ? " [FAIL] " + verified->note
                                : " [SKIP]");
    } else {
      progress(i, cases.size(), c, "");
    }
    if (verify_only) {
      if (verified) print_verify_line(c, *verified);
      continue;
    }
    if (c.op == Op::bwd) {
      BenchResult r;
      r.spec = c;
      r.backend = run.settings.backend;
      r.tensor_bytes = c.tensor_bytes();
      r.outcome = Outcome::unsupported;
      r.reason = "no backward kernel: polyhead runs the forward pass only";
      const CaseData data(c, 1, CaseData::Fill::none);
      if (!data.mask().is_dynamic()) count_case(c, data, r);
      results[i] = std::move(r);
    } else {
      results[i] = gpu ? time_case_cuda(c, run.settings) : time_case(c, run.settings);
    }
    results[i]->verify = verified;
  }
  if (verify_only) return failed ? 1 : 0;
  for (auto& r : results) run.results.push_back(std::move(*r));
  if (!gpu) {
    run.sgemm_after = sgemm_gflops(run.settings.threads, kSgemmN, kSgemmRuns);
    if (run.sgemm_before && run.sgemm_after) {
      run.sgemm_gflops = std::max(*run.sgemm_before, *run.sgemm_after);
    }
  }
  run.load_after = load_average();
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  run.seconds = dt.count();

  for (BenchResult& r : run.results) {
    if (!ok(r)) continue;
    if (run.sgemm_gflops) r.ceiling_ratio = r.gflops / *run.sgemm_gflops;
    for (const BenchResult& b : run.results) {
      if (b.spec.name == r.spec.baseline && ok(b)) r.baseline_time_ratio = r.median_s / b.median_s;
    }
  }

  print_header(run);
  print_table(run);
  if (const auto path = args.get("json")) {
    write_json(run, *path);
    std::printf("\nwrote %s\n", path->c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace polyhead::cli
