// Timing of one benchmark case (bench_run.cpp) and the reports over all of them
// (bench_report.cpp); `polyhead bench` (cmd_bench.cpp) ties them together.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cases.h"

namespace polyhead::cli {

struct BenchSettings {
  std::string backend = "cpu";
  int threads = 1;  // passed to the backend and to the sgemm ceiling
  // Timed runs: small cases run on until 0.2 s have passed, long ones stop after 3 runs once
  // they have taken 10 s.
  int repeats = 10;
};

struct BenchResult {
  CaseSpec spec;
  std::string backend;
  std::string skipped;  // why the case did not run; empty if it ran
  int runs = 0;
  double median_s = 0.0, p20_s = 0.0, p80_s = 0.0;
  double flops = 0.0;                         // polyhead::forward_flops: mask-aware
  double gflops = 0.0;                        // flops / median
  std::optional<double> ceiling_ratio;        // gflops / sgemm GFLOP/s
  std::optional<double> baseline_time_ratio;  // median / median of spec.baseline
  int64_t tensor_bytes = 0;                   // q, k, v and o
  std::optional<int64_t> peak_rss_bytes;      // memory cases: peak resident set of the run
};

// Warm-up, then timed runs on a steady clock, rotating between input sets when one set would
// sit in cache.
BenchResult time_case(const CaseSpec& spec, const BenchSettings& settings);

// Runs the case once in a forked child and reports the child's peak resident memory. Call it
// before this process runs any OpenMP parallel region: GNU OpenMP's thread pool does not
// survive fork(), so a child of a process that already used it would hang.
BenchResult measure_memory_case(const CaseSpec& spec, const BenchSettings& settings);

struct BenchRun {
  BenchSettings settings;
  std::string preset;
  std::optional<double> sgemm_gflops;  // the ceiling: the higher of the two measurements
  std::optional<double> sgemm_before, sgemm_after;
  std::optional<double> load_before, load_after;  // 1-minute load averages around the run
  int sgemm_n = 0;
  std::vector<BenchResult> results;
};

void print_table(const BenchRun& run);
// Every figure of every case, for plotting tools; throws UsageError if `path` cannot be written.
void write_json(const BenchRun& run, const std::string& path);

}  // namespace polyhead::cli
