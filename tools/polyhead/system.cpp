#include "system.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef POLYHEAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace polyhead::cli {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  const size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

CpuInfo cpu_info() {
  CpuInfo info;
  info.model = "unknown";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::pair<std::string, std::string>> cores;  // (physical id, core id)
  std::string package;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon));
    const std::string value = trim(line.substr(colon + 1));
    if ((key == "model name" || key == "Model" || key == "cpu model") && info.model == "unknown") {
      info.model = value;
    } else if (key == "physical id") {
      package = value;
    } else if (key == "core id") {
      cores.insert({package, value});
    }
  }
  info.physical_cores = int(cores.size());
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  info.logical_cpus = online > 0 ? int(online) : int(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  info.usable_cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  return info;
}

int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

bool have_openblas() {
#ifdef POLYHEAD_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

std::string openblas_config() {
#ifdef POLYHEAD_HAVE_OPENBLAS
  return trim(openblas_get_config());
#else
  return "";
#endif
}

std::optional<double> sgemm_gflops([[maybe_unused]] int threads, [[maybe_unused]] int n,
                                   [[maybe_unused]] int runs) {
#ifdef POLYHEAD_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
  const size_t elems = size_t(n) * size_t(n);
  std::vector<float> a(elems), b(elems), c(elems);
  for (size_t i = 0; i < elems; ++i) {
    a[i] = float(i % 17) * 0.01f;
    b[i] = float(i % 13) * 0.01f;
  }
  std::vector<double> seconds;
  for (int r = 0; r <= runs; ++r) {  // run 0 is the warm-up
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    if (r > 0) seconds.push_back(dt.count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  return 2.0 * double(n) * double(n) * double(n) / median * 1e-9;
#else
  return std::nullopt;
#endif
}

std::optional<double> load_average() {
  std::ifstream in("/proc/loadavg");
  double one_minute = 0.0;
  if (in >> one_minute) return one_minute;
  return std::nullopt;
}

namespace {

// The value in kB of `key` ("VmHWM:") in a /proc file of "key value kB" lines, in bytes.
std::optional<int64_t> proc_kb(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      try {
        return int64_t(std::stoll(line.substr(key.size()))) * 1024;
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> rss_peak_bytes() {
  return proc_kb("/proc/self/status", "VmHWM:");
}

bool reset_rss_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return bool(out);
}

std::optional<int64_t> memory_available_bytes() {
  return proc_kb("/proc/meminfo", "MemAvailable:");
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

}  // namespace polyhead::cli
