// The bench table, its target lines, and the result file (format "polyhead-bench/1",
// bench/grids/README.md) that `bench compare`, the peers' scripts and the plots share.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "args.h"
#include "bench.h"
#include "json.h"
#include "polyhead/attention.h"
#include "system.h"

namespace polyhead::cli {
namespace {

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

std::string sci(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", x);
  return buf;
}

std::string gib(int64_t bytes) {
  return fixed(double(bytes) / double(int64_t(1) << 30), 2) + " GiB";
}

double peak_ratio(const BenchResult& r) {
  return double(*r.peak_rss_bytes) / double(r.tensor_bytes);
}

// Bytes of K and V, which a decode step must read once: its roofline is bandwidth.
double kv_gbps(const BenchResult& r) {
  const CaseSpec& c = r.spec;
  const double bytes = double(c.tensor_batch() * c.total_k() * c.heads_kv *
                              (c.head_dim_qk + c.head_dim_v) * dtype_size(c.dtype));
  return bytes / r.median_s * 1e-9;
}

bool decode_like(const CaseSpec& c) {
  return c.op == Op::decode || c.seqlen_q == 1;
}

std::string notes(const BenchResult& r) {
  std::string s;
  const auto add = [&](const std::string& x) { s += (s.empty() ? "" : "; ") + x; };
  if (decode_like(r.spec)) add("K,V read at " + fixed(kv_gbps(r), 1) + " GB/s");
  if (r.baseline_time_ratio) {
    add("time " + fixed(*r.baseline_time_ratio, 2) + "x " + r.spec.baseline);
  }
  if (r.peak_rss_bytes) {
    add("peak RSS " + gib(*r.peak_rss_bytes) + " = " + fixed(peak_ratio(r), 2) + "x q,k,v,o (" +
        gib(r.tensor_bytes) + ")");
  }
  return s;
}

std::string check_text(const BenchResult& r) {
  if (!r.verify) return "";
  if (r.verify->passed) return "[OK]";
  return r.verify->note.rfind("not run", 0) == 0 ? "[SKIP]" : "[FAIL]";
}

}  // namespace

void print_verify_line(const CaseSpec& c, const VerifyResult& v) {
  const bool skipped = !v.passed && v.note.rfind("not run", 0) == 0;
  std::string line = std::string(v.passed  ? "[OK]"
                                 : skipped ? "[SKIP]"
                                           : "[FAIL]") +
                     " " + c.name + ": ";
  if (v.passed || v.note.empty()) {
    line += "o err " + sci(v.o_err) + ", lse err " + sci(v.lse_err) + " (tolerance " + sci(v.tol) +
            ") on " + v.instance;
  } else {
    line += v.note;
  }
  std::printf("  %s\n", line.c_str());
}

std::string implementation_name(const BenchRun& run) {
  return "polyhead-" + run.settings.backend;
}

void print_table(const BenchRun& run) {
  const bool gpu = run.settings.backend == "cuda";
  const char* unit = gpu ? "TFLOP/s" : "GFLOP/s";
  const double scale = gpu ? 1e-3 : 1.0;
  std::printf("%-44s %-30s %7s %9s %9s %9s %8s %6s %9s %6s  %s\n", "case", "shape", "density",
              "median ms", "p20 ms", "p80 ms", unit, "/sgemm", "peak MiB", "check", "notes");
  for (const BenchResult& r : run.results) {
    const CaseSpec& c = r.spec;
    std::printf("%-44s %-30s %7.4f ", c.name.c_str(), c.shape_text().c_str(), r.density);
    if (!ok(r)) {
      std::printf("%9s %s (%s): %s\n", fixed(outcome_code(r.outcome), 0).c_str(),
                  std::string(outcome_name(r.outcome)).c_str(), std::string(op_name(c.op)).c_str(),
                  r.reason.c_str());
      continue;
    }
    const std::string ratio = r.ceiling_ratio ? fixed(*r.ceiling_ratio, 2) : "n/a";
    const std::string peak =
        r.peak_mem_bytes ? fixed(double(*r.peak_mem_bytes) / double(1 << 20), 0) : "-";
    std::printf("%9.3f %9.3f %9.3f %8.1f %6s %9s %6s  %s\n", r.median_s * 1e3, r.p20_s * 1e3,
                r.p80_s * 1e3, r.gflops * scale, ratio.c_str(), peak.c_str(), check_text(r).c_str(),
                notes(r).c_str());
  }

  bool header = false;
  const auto section = [&](const char* title, const std::string& line) {
    if (!header) std::printf("\n%s\n", title);
    header = true;
    std::printf("  %s\n", line.c_str());
  };
  for (const BenchResult& r : run.results) {
    if (!r.verify) continue;
    if (!header) std::printf("\nverified against the fp64 reference:\n");
    header = true;
    print_verify_line(r.spec, *r.verify);
  }

  // Targets stated by the cases (the grid's baseline, ceiling and memory fields).
  header = false;
  for (const BenchResult& r : run.results) {
    if (!ok(r)) continue;
    const CaseSpec& c = r.spec;
    if (c.min_ceiling_ratio) {
      section(
          "targets:",
          c.name + ": " +
              (r.ceiling_ratio ? fixed(*r.ceiling_ratio * 100, 0) + "% of the sgemm ceiling"
                               : std::string("no sgemm ceiling (OpenBLAS absent)")) +
              " (target >= " + fixed(*c.min_ceiling_ratio * 100, 0) + "%)" +
              (r.ceiling_ratio ? (*r.ceiling_ratio >= *c.min_ceiling_ratio ? ": met" : ": MISSED")
                               : ""));
    }
    if (c.expected_time_ratio && r.baseline_time_ratio) {
      section("targets:", c.name + ": time / " + c.baseline +
                              " time = " + fixed(*r.baseline_time_ratio, 2) + " (about " +
                              fixed(*c.expected_time_ratio, 2) + " expected)");
    }
    if (c.max_peak_ratio && r.peak_rss_bytes) {
      section("targets:", c.name + ": peak resident memory " + fixed(peak_ratio(r), 2) +
                              "x the bytes of q, k, v, o (target < " + fixed(*c.max_peak_ratio, 1) +
                              "x)" + (peak_ratio(r) < *c.max_peak_ratio ? ": met" : ": MISSED"));
    }
  }
}

void write_json(const BenchRun& run, const std::string& path) {
  const auto opt = [](const auto& x) { return x ? json_number(double(*x)) : std::string("null"); };
  const std::string impl = implementation_name(run);
  std::ostringstream os;
  os << "{\n  \"format\": \"polyhead-bench/1\",\n  \"implementations\": [" << json_quote(impl)
     << "],\n  \"polyhead_version\": " << json_quote(version())
     << ",\n  \"commit\": " << json_quote(run.commit) << ",\n  \"grid\": " << json_quote(run.grid)
     << ",\n  \"grid_source\": " << json_quote(run.grid_source)
     << ",\n  \"machine\": {\"cpu\": " << json_quote(cpu_info().model)
     << ", \"threads\": " << run.settings.threads << ", \"device\": " << json_quote(run.device)
     << ", \"load_before\": " << opt(run.load_before) << ", \"load_after\": " << opt(run.load_after)
     << "},\n  \"settings\": {\"backend\": " << json_quote(run.settings.backend)
     << ", \"repeats\": " << run.settings.repeats
     << ", \"verify\": " << (run.settings.verify ? "true" : "false")
     << "},\n  \"sgemm_n\": " << run.sgemm_n << ", \"sgemm_gflops\": " << opt(run.sgemm_gflops)
     << ", \"sgemm_gflops_before\": " << opt(run.sgemm_before)
     << ", \"sgemm_gflops_after\": " << opt(run.sgemm_after)
     << ",\n  \"seconds\": " << json_number(run.seconds) << ",\n  \"cases\": [";
  for (size_t i = 0; i < run.results.size(); ++i) {
    const BenchResult& r = run.results[i];
    const CaseSpec& c = r.spec;
    os << (i ? ",\n" : "\n") << "    {\"name\": " << json_quote(c.name)
       << ", \"pattern\": " << json_quote(c.pattern.empty() ? "custom" : c.pattern)
       << ", \"op\": " << json_quote(op_name(c.op)) << ", \"mask\": " << json_quote(c.mask)
       << ", \"dtype\": " << json_quote(dtype_name(c.dtype)) << ", \"batch\": " << c.batch
       << ", \"seqlen_q\": " << c.total_q() << ", \"seqlen_k\": " << c.total_k()
       << ", \"varlen\": " << (c.varlen() ? "true" : "false") << ", \"heads_q\": " << c.heads_q
       << ", \"heads_kv\": " << c.heads_kv << ", \"head_dim_qk\": " << c.head_dim_qk
       << ", \"head_dim_v\": " << c.head_dim_v << ", \"pairs\": " << r.pairs
       << ", \"density\": " << json_number(r.density) << ", \"flops\": " << json_number(r.flops)
       << ", \"baseline\": " << (c.baseline.empty() ? "null" : json_quote(c.baseline))
       << ",\n     \"results\": {" << json_quote(impl)
       << ": {\"status\": " << json_quote(outcome_name(r.outcome));
    if (!ok(r)) {
      const std::string code = json_number(outcome_code(r.outcome));
      os << ", \"reason\": " << json_quote(r.reason) << ", \"tflops\": [" << code << ", " << code
         << ", " << code << "]}}}";
      continue;
    }
    os << ", \"runs\": " << r.runs << ", \"median_ms\": " << json_number(r.median_s * 1e3)
       << ", \"p20_ms\": " << json_number(r.p20_s * 1e3)
       << ", \"p80_ms\": " << json_number(r.p80_s * 1e3) << ", \"tflops\": ["
       << json_number(r.flops / r.median_s * 1e-12) << ", "
       << json_number(r.flops / r.p20_s * 1e-12) << ", " << json_number(r.flops / r.p80_s * 1e-12)
       << "], \"kv_gbps\": " << (decode_like(c) ? json_number(kv_gbps(r)) : "null")
       << ", \"peak_mem_bytes\": " << opt(r.peak_mem_bytes)
       << ", \"peak_rss_bytes\": " << opt(r.peak_rss_bytes)
       << ", \"tensor_bytes\": " << r.tensor_bytes
       << ", \"ratio_to_sgemm\": " << opt(r.ceiling_ratio)
       << ", \"time_ratio_to_baseline\": " << opt(r.baseline_time_ratio);
    if (r.verify) {
      const VerifyResult& v = *r.verify;
      os << ", \"verify\": {\"passed\": " << (v.passed ? "true" : "false")
         << ", \"o_err\": " << json_number(v.o_err) << ", \"lse_err\": " << json_number(v.lse_err)
         << ", \"tolerance\": " << json_number(v.tol)
         << ", \"instance\": " << json_quote(v.instance) << ", \"note\": " << json_quote(v.note)
         << "}";
    }
    os << "}}}";
  }
  os << "\n  ]\n}\n";
  std::ofstream out(path, std::ios::trunc);
  out << os.str();
  out.flush();
  if (!out) throw UsageError("'" + path + "': cannot write the JSON report");
}

}  // namespace polyhead::cli
