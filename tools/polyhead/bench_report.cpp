// The bench table, its target lines, and the JSON file for plotting tools.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "args.h"
#include "bench.h"
#include "polyhead/attention.h"
#include "system.h"

namespace polyhead::cli {
namespace {

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

std::string gib(int64_t bytes) {
  return fixed(double(bytes) / double(int64_t(1) << 30), 2) + " GiB";
}

double peak_ratio(const BenchResult& r) {
  return double(*r.peak_rss_bytes) / double(r.tensor_bytes);
}

// Bytes of K and V, which a decode step (Sq = 1) must read once: its roofline is bandwidth.
double kv_gbps(const BenchResult& r) {
  const CaseSpec& c = r.spec;
  const double bytes = double(c.batch * c.seqlen_k * c.heads_kv * (c.head_dim_qk + c.head_dim_v) *
                              dtype_size(c.dtype));
  return bytes / r.median_s * 1e-9;
}

std::string notes(const BenchResult& r) {
  std::string s;
  if (r.spec.seqlen_q == 1) s += "K,V read at " + fixed(kv_gbps(r), 2) + " GB/s";
  if (r.baseline_time_ratio) {
    s += (s.empty() ? "" : "; ") + std::string("time ") + fixed(*r.baseline_time_ratio, 2) + "x " +
         r.spec.baseline;
  }
  if (r.peak_rss_bytes) {
    s += (s.empty() ? "" : "; ") + std::string("peak RSS ") + gib(*r.peak_rss_bytes) + " = " +
         fixed(peak_ratio(r), 2) + "x q,k,v,o (" + gib(r.tensor_bytes) + ")";
  }
  return s;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

template <typename T>
std::string json_opt(const std::optional<T>& x) {
  if (!x) return "null";
  std::ostringstream os;
  os.precision(15);
  os << *x;
  return os.str();
}

std::string json_number(double x) {
  return json_opt(std::optional<double>(x));
}

}  // namespace

void print_table(const BenchRun& run) {
  std::printf("%-31s %-29s %-13s %-5s %9s %9s %9s %8s %6s  %s\n", "case", "shape", "mask", "dtype",
              "median ms", "p20 ms", "p80 ms", "GFLOP/s", "/sgemm", "notes");
  for (const BenchResult& r : run.results) {
    const CaseSpec& c = r.spec;
    std::printf("%-31s %-29s %-13s %-5s ", c.name.c_str(), c.shape_text().c_str(), c.mask.c_str(),
                std::string(dtype_name(c.dtype)).c_str());
    if (!r.skipped.empty()) {
      std::printf("skipped: %s\n", r.skipped.c_str());
      continue;
    }
    const std::string ratio = r.ceiling_ratio ? fixed(*r.ceiling_ratio, 2) : "n/a";
    std::printf("%9.2f %9.2f %9.2f %8.1f %6s  %s\n", r.median_s * 1e3, r.p20_s * 1e3, r.p80_s * 1e3,
                r.gflops, ratio.c_str(), notes(r).c_str());
  }

  // Targets stated by the cases (cases.cpp).
  bool header = false;
  const auto target = [&](const std::string& line) {
    if (!header) std::printf("\ntargets:\n");
    header = true;
    std::printf("  %s\n", line.c_str());
  };
  for (const BenchResult& r : run.results) {
    if (!r.skipped.empty()) continue;
    const CaseSpec& c = r.spec;
    if (c.min_ceiling_ratio) {
      target(c.name + ": " +
             (r.ceiling_ratio ? fixed(*r.ceiling_ratio * 100, 0) + "% of the sgemm ceiling"
                              : std::string("no sgemm ceiling (OpenBLAS absent)")) +
             " (target >= " + fixed(*c.min_ceiling_ratio * 100, 0) + "%)" +
             (r.ceiling_ratio ? (*r.ceiling_ratio >= *c.min_ceiling_ratio ? ": met" : ": MISSED")
                              : ""));
    }
    if (c.expected_time_ratio && r.baseline_time_ratio) {
      target(c.name + ": time / " + c.baseline + " time = " + fixed(*r.baseline_time_ratio, 2) +
             " (about " + fixed(*c.expected_time_ratio, 2) + " expected)");
    }
    if (c.max_peak_ratio && r.peak_rss_bytes) {
      target(c.name + ": peak resident memory " + fixed(peak_ratio(r), 2) +
             "x the bytes of q, k, v, o (target < " + fixed(*c.max_peak_ratio, 1) + "x)" +
             (peak_ratio(r) < *c.max_peak_ratio ? ": met" : ": MISSED"));
    }
  }
}

void write_json(const BenchRun& run, const std::string& path) {
  std::ostringstream os;
  os << "{\n  \"polyhead_version\": " << json_string(version())
     << ",\n  \"preset\": " << json_string(run.preset)
     << ",\n  \"backend\": " << json_string(run.settings.backend)
     << ",\n  \"threads\": " << run.settings.threads
     << ",\n  \"cpu\": " << json_string(cpu_info().model) << ",\n  \"sgemm_n\": " << run.sgemm_n
     << ",\n  \"sgemm_gflops\": " << json_opt(run.sgemm_gflops)
     << ",\n  \"sgemm_gflops_before\": " << json_opt(run.sgemm_before)
     << ",\n  \"sgemm_gflops_after\": " << json_opt(run.sgemm_after) << ",\n  \"cases\": [";
  for (size_t i = 0; i < run.results.size(); ++i) {
    const BenchResult& r = run.results[i];
    const CaseSpec& c = r.spec;
    os << (i ? ",\n" : "\n") << "    {\"name\": " << json_string(c.name)
       << ", \"shape\": {\"batch\": " << c.batch << ", \"seqlen_q\": " << c.seqlen_q
       << ", \"seqlen_k\": " << c.seqlen_k << ", \"heads_q\": " << c.heads_q
       << ", \"heads_kv\": " << c.heads_kv << ", \"head_dim_qk\": " << c.head_dim_qk
       << ", \"head_dim_v\": " << c.head_dim_v << "}, \"mask\": " << json_string(c.mask)
       << ", \"dtype\": " << json_string(std::string(dtype_name(c.dtype)))
       << ", \"backend\": " << json_string(r.backend);
    if (!r.skipped.empty()) {
      os << ", \"skipped\": " << json_string(r.skipped) << "}";
      continue;
    }
    os << ", \"runs\": " << r.runs << ", \"median_s\": " << json_number(r.median_s)
       << ", \"p20_s\": " << json_number(r.p20_s) << ", \"p80_s\": " << json_number(r.p80_s)
       << ", \"flops\": " << json_number(r.flops) << ", \"gflops\": " << json_number(r.gflops)
       << ", \"kv_gbps\": " << json_number(kv_gbps(r))
       << ", \"ratio_to_sgemm\": " << json_opt(r.ceiling_ratio)
       << ", \"time_ratio_to_baseline\": " << json_opt(r.baseline_time_ratio)
       << ", \"baseline\": " << (c.baseline.empty() ? "null" : json_string(c.baseline))
       << ", \"tensor_bytes\": " << r.tensor_bytes
       << ", \"peak_rss_bytes\": " << json_opt(r.peak_rss_bytes) << "}";
  }
  os << "\n  ]\n}\n";
  std::ofstream out(path, std::ios::trunc);
  out << os.str();
  out.flush();
  if (!out) throw UsageError("'" + path + "': cannot write the JSON report");
}

}  // namespace polyhead::cli
