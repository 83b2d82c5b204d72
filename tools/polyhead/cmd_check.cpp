// polyhead check: random problems (cases.h) on every available backend against the reference
// backend run in fp64 on the same rounded inputs (DESIGN.md section 6).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "args.h"
#include "cases.h"
#include "commands.h"
#include "polyhead/attention.h"
#include "polyhead/error.h"
#include "verify.h"

namespace polyhead::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: polyhead check [--backend all|NAME] [--seed N] [--cases N] [--threads N]

Runs random attention problems on each available backend that supports them and compares o
and lse with the reference backend run in fp64 on the same rounded inputs. The problems cover
sizes 1, 7, 37, 113, ...; Sq != Sk; GQA/MQA; Dqk != Dv; every mask kind (none, causal, windows
with sinks, neighborhood, S2 strided, per-head, block masks, LongHeads, DHSA, top-k); fp32,
fp16, bf16; scale, softcap, ALiBi, sinks; varlen with empty sequences; strided layouts.
Outputs are poisoned with NaN before each run; the cuda backend runs on device copies of the
inputs (cu_seqlens and mask tensors stay on the host) and its outputs are copied back. The
relative L2 error must stay under fp32 1e-5, fp16 2e-3, bf16 1.6e-2.

options:
  --backend B   all (default: every available backend, reference included) or one name
  --seed N      random seed (default 1); case i depends only on (seed, i)
  --cases N     number of random cases (default 45, which cover every mask form x dtype),
                plus a third as many with the head dims GPU kernels are built for
  --threads N   cpu threads (default: OpenMP's default)
Takes a few seconds with the defaults on 2 cores. Exit code 1 if any case fails.
)";

constexpr OptionDef kOptions[] = {{"backend"}, {"seed"}, {"cases"}, {"threads"}};

struct Row {
  std::string backend;
  std::string result;  // "pass", "FAIL", "skip"
  double o_err = 0.0, lse_err = 0.0;
  std::string note;  // skip reason or error message
};

void print_row(const CaseSpec& c, const Row& r) {
  const bool measured = r.result != "skip" && r.note.empty();
  char errs[64] = "        -         -";
  if (measured) std::snprintf(errs, sizeof errs, "%9.2e %9.2e", r.o_err, r.lse_err);
  std::printf("%-5s %-10s %-5s %s  %-4s  %s%s%s\n", c.name.c_str(), r.backend.c_str(),
              std::string(dtype_name(c.dtype)).c_str(), errs, r.result.c_str(),
              c.describe().c_str(), r.note.empty() ? "" : "  -- ", r.note.c_str());
}

// Runs one case on one backend (inputs rounded to the case dtype, f32 outputs poisoned with
// NaN; for cuda, on device copies of them) and compares with the fp64 reference outputs.
Row run_on(const std::string& backend, const CaseSpec& c, const CaseData& data,
           const HostTensor& o_ref, const HostTensor& lse_ref, int threads) {
  Row row{backend, "pass", 0.0, 0.0, ""};
  const HostTensor o = poisoned(DType::f32, c.o_shape()), lse = poisoned(DType::f32, c.lse_shape());
  try {
    const AttentionProblem p = data.problem(o.view(), lse.view(), false);
    const Status st = run_anywhere(p, {.backend = backend, .num_threads = threads});
    if (!st) return {backend, "skip", 0.0, 0.0, st.reason};
    row.o_err = rel_l2(o, o_ref);
    row.lse_err = rel_l2(lse, lse_ref);
    const double tol = tolerance(c.dtype);
    if (!(row.o_err <= tol && row.lse_err <= tol)) row.result = "FAIL";
  } catch (const Error& e) {
    row.result = "FAIL";
    row.note = e.what();
  } catch (const UsageError& e) {  // no device copies possible: nothing ran
    return {backend, "skip", 0.0, 0.0, e.what()};
  }
  return row;
}

}  // namespace

int cmd_check(Words words) {
  const Args args = Args::parse(words, kOptions);
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::string which = args.str("backend", "all");
  const auto seed = uint64_t(args.integer("seed", 1, 0, INT64_MAX));
  const int count = int(args.integer("cases", 3 * kMaskForms, 1, 100000));
  const int threads = int(args.integer("threads", 0, 1, 4096));

  std::vector<std::string> targets;
  std::string known;
  for (const BackendInfo& b : backends()) {
    known += (known.empty() ? "" : ", ") + b.name;
    if (which != "all" && which != b.name) continue;
    if (b.available) {
      targets.push_back(b.name);
    } else if (which == b.name) {
      throw UsageError("backend '" + which + "' is not available here: " + b.description);
    } else {
      std::printf("note: backend %s is unavailable (%s)\n", b.name.c_str(), b.description.c_str());
    }
  }
  if (which != "all" && targets.empty()) {
    throw UsageError("--backend = '" + which + "' is not one of all, " + known);
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::printf("%-5s %-10s %-5s %9s %9s  %-4s  %s\n", "case", "backend", "dtype", "o err", "lse err",
              "res", "problem");
  int passed = 0, skipped = 0;
  std::vector<std::string> failures;
  const std::vector<CaseSpec> cases = check_cases(seed, count);
  for (size_t index = 0; index < cases.size(); ++index) {
    const CaseSpec& c = cases[index];
    const CaseData data(c, seed * 1000003 + index, true);
    // The oracle: the reference backend on f64 copies of the rounded inputs, f64 outputs.
    const HostTensor o_ref = poisoned(DType::f64, c.o_shape());
    const HostTensor lse_ref = poisoned(DType::f64, c.lse_shape());
    try {
      attention(data.problem(o_ref.view(), lse_ref.view(), true), {.backend = "reference"});
    } catch (const Error& e) {  // a case the library refuses is a bug of the case generator
      print_row(c, {"ref(f64)", "FAIL", 0.0, 0.0, e.what()});
      failures.push_back(c.name + " on the fp64 reference: " + c.describe());
      continue;
    }
    for (const std::string& name : targets) {
      const Row row = run_on(name, c, data, o_ref, lse_ref, threads);
      print_row(c, row);
      if (row.result == "pass") {
        ++passed;
      } else if (row.result == "skip") {
        ++skipped;
      } else {
        failures.push_back(c.name + " on " + name + ": " + c.describe());
      }
    }
  }
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  std::printf("\n%d passed, %zu failed, %d skipped (%zu cases, seed %llu, %.1f s)\n", passed,
              failures.size(), skipped, cases.size(), static_cast<unsigned long long>(seed),
              dt.count());
  for (const std::string& f : failures) std::printf("FAILED %s\n", f.c_str());
  if (!failures.empty()) {
    std::printf("reproduce: polyhead check --seed %llu --cases %d\n",
                static_cast<unsigned long long>(seed), count);
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace polyhead::cli
