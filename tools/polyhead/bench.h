// `polyhead bench`: timing of one case on the CPU (bench_run.cpp) or a GPU (bench_cuda.cpp),
// the reports over all of them (bench_report.cpp), the result files and their comparison
// (bench_compare.cpp) and the export of the grid for the peers (bench_export.cpp);
// cmd_bench.cpp ties them together.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cases.h"
#include "verify.h"

namespace polyhead::cli {

struct BenchSettings {
  std::string backend = "cpu";
  int threads = 1;  // passed to the backend and to the sgemm ceiling
  // Timed runs: small cases run on until 0.2 s have passed; a case stops after 3 runs once it
  // has taken max_seconds.
  int repeats = 10;
  double max_seconds = 10.0;
  bool verify = false;  // check each case against the reference before timing it
};

// LongCA-bench's codes: a case that ran out of memory records -1, one the implementation cannot
// run -2 (with the reason).
enum class Outcome : uint8_t { ok, oom, unsupported, error };
std::string_view outcome_name(Outcome o);
inline double outcome_code(Outcome o) {
  return o == Outcome::oom ? -1.0 : -2.0;
}

struct BenchResult {
  CaseSpec spec;
  std::string backend;
  Outcome outcome = Outcome::ok;
  std::string reason;  // why the case has no timing
  int runs = 0;
  double median_s = 0.0, p20_s = 0.0, p80_s = 0.0;
  int64_t pairs = 0;    // visible (head, i, j) triples (polyhead::unmasked_pairs)
  double density = 0;   // pairs / (Hq * Sq_total * Sk_total * B), LongCA's mask density
  double flops = 0.0;   // 2 (Dqk + Dv) pairs; 2.5x that for bwd
  double gflops = 0.0;  // flops / median
  std::optional<double> ceiling_ratio;        // gflops / sgemm GFLOP/s
  std::optional<double> baseline_time_ratio;  // median / median of spec.baseline
  int64_t tensor_bytes = 0;                   // q, k, v and o
  // Peak memory of the timed call: the resident set high-water mark of the process (CPU, reset
  // before the call) or the device memory pool's high-water mark (GPU, inputs included).
  std::optional<int64_t> peak_mem_bytes;
  std::optional<int64_t> peak_rss_bytes;  // memory cases: peak resident set of a child process
  std::optional<VerifyResult> verify;
};

bool ok(const BenchResult& r);

// The case's visible pairs and FLOPs from its host-side description (no inputs needed for
// static masks; data-dependent masks select from `data`'s q and k, which must be filled).
void count_case(const CaseSpec& spec, const CaseData& data, BenchResult& r);

// CPU timing: warm-up, then timed runs on a steady clock, rotating between input sets when one
// set would sit in cache.
BenchResult time_case(const CaseSpec& spec, const BenchSettings& settings);

// GPU timing (bench_cuda.cpp; without POLYHEAD_CUDA, bench_nocuda.cpp records every case as
// unsupported with the reason): inputs copied to the device, CUDA
// events around each call after a 512 MiB memset that flushes L2.
BenchResult time_case_cuda(const CaseSpec& spec, const BenchSettings& settings);
// "NVIDIA H200 (sm_90, 139.8 GiB)", or empty without a usable GPU.
std::string cuda_device_name();

// Runs the case once in a forked child and reports the child's peak resident memory. Call it
// before this process runs any OpenMP parallel region: GNU OpenMP's thread pool does not
// survive fork(), so a child of a process that already used it would hang.
BenchResult measure_memory_case(const CaseSpec& spec, const BenchSettings& settings);

struct BenchRun {
  BenchSettings settings;
  std::string grid, grid_source, grid_description;
  std::string commit;                  // POLYHEAD_COMMIT, if set
  std::string device;                  // the GPU's name for cuda runs
  std::optional<double> sgemm_gflops;  // the ceiling: the higher of the two measurements
  std::optional<double> sgemm_before, sgemm_after;
  std::optional<double> load_before, load_after;  // 1-minute load averages around the run
  int sgemm_n = 0;
  double seconds = 0.0;  // wall time of the whole run
  std::vector<BenchResult> results;
};

// The name results carry for this run's implementation: "polyhead-cpu", "polyhead-cuda".
std::string implementation_name(const BenchRun& run);

void print_table(const BenchRun& run);
// "  [OK] NAME: o err ..., lse err ... (tolerance ...) on INSTANCE", [SKIP] or [FAIL] with why.
void print_verify_line(const CaseSpec& c, const VerifyResult& v);
// Every figure of every case in the result format that `bench compare`, the peers and the plots
// share (bench/grids/README.md); throws UsageError if `path` cannot be written.
void write_json(const BenchRun& run, const std::string& path);

// `polyhead bench --export DIR`: each case's description, cu_seqlens, slices, block masks and
// block map as JSON and .npy files for bench/anchors/ (returns the number of cases written).
int export_cases(const std::vector<CaseSpec>& cases, const std::string& grid_name,
                 const std::string& dir);

// `polyhead bench compare FILE... [--markdown FILE] [--json FILE]`.
int cmd_bench_compare(std::span<const std::string_view> words);

}  // namespace polyhead::cli
