// Facts about the machine and the build: CPU model, thread counts, OpenBLAS, resident memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace polyhead::cli {

struct CpuInfo {
  std::string model;       // "AMD EPYC 7B13", or "unknown"
  int logical_cpus = 0;    // online logical CPUs
  int usable_cpus = 0;     // in this process's affinity mask
  int physical_cores = 0;  // distinct (package, core) pairs; 0 when unknown
};

// Best effort from /proc/cpuinfo and the affinity mask.
CpuInfo cpu_info();

// The thread count the cpu backend uses when RunOptions::num_threads is 0 (OpenMP's default).
int default_threads();

// OpenBLAS, when the build has it: its configuration string and a measured sgemm ceiling.
bool have_openblas();
std::string openblas_config();
// GFLOP/s of a square n x n x n cblas_sgemm on `threads` threads: the median of `runs` after one
// warm-up; nullopt without OpenBLAS.
std::optional<double> sgemm_gflops(int threads, int n, int runs);

// The 1-minute load average (/proc/loadavg): above the thread count, other processes compete
// for the cores and timings are low. nullopt when unknown.
std::optional<double> load_average();

// Peak resident set size of this process so far (getrusage ru_maxrss), in bytes.
int64_t peak_rss_bytes();

// The resident set high-water mark (VmHWM of /proc/self/status), which reset_rss_peak() sets
// back to the current resident set (Linux: "5" written to /proc/self/clear_refs). nullopt /
// false where the system offers neither.
std::optional<int64_t> rss_peak_bytes();
bool reset_rss_peak();

// MemAvailable of /proc/meminfo: what a new allocation can take without swapping.
std::optional<int64_t> memory_available_bytes();

}  // namespace polyhead::cli
