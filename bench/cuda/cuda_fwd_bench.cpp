// Times the cuda backend's forward pass on the cases of cuda_fwd_cases.h and writes JSON.
//
//   cuda_fwd_bench [--quick] [--repeats N] [--json out.json] [--cases cases.json] [--only S1,S2]
//                  [--family auto|mma|wgmma|ws] [--ctas N] [--no-patch-order] [--persistent]
//                  [--no-ws-na-tiles] [--timeline] [--soak MS]
//
// --family picks the tensor-core kernel family (dev/cuda_fwd ladder; ws: the warp-specialized
// kernel, forced, cases it cannot run reported as refused); with mma, wgmma or ws a call is the
// dispatcher's fwd_run (no validation), with auto (the default) the public call. --persistent
// runs the warp-specialized kernel, where the dispatcher picks it, in its persistent form
// (FwdOverrides::ws_persistent). --no-ws-na-tiles runs rank-2 neighborhoods on the
// warp-specialized kernel with 128-key tiles instead of its 64-key sub-patch tiles
// (FwdOverrides::ws_na_tiles).
// --ctas caps the persistent wgmma kernel's grid (FwdOverrides::max_ctas; -1: one CTA per
// work item, as a non-persistent grid). --no-patch-order runs neighborhood masks in row order
// instead of patch order (FwdOverrides::patch_order). --timeline (builds configured with
// -DPOLYHEAD_CUDA_TIMELINE=ON) runs each case once more with the warp-specialized kernel's phase
// timestamps on and prints their summary (timeline_report.h). --soak MS then runs each case back
// to back for MS milliseconds (no L2 flush, no wait between calls) and reports its time per call
// under that sustained load.
//
// Where the driver's NVML library loads (gpu_sampler.h), the SM clock and board power are
// sampled every 0.5 ms during the timed calls (and the soak) and reported beside each case, with
// the share of samples whose clock the power cap held down: under that cap a faster kernel can
// run at a lower clock, and a slower one at a higher.
//
// Method (DESIGN.md section 7): inputs random bf16, one warm-up call, then N timed calls, each
// between two CUDA events on one stream after a 512 MiB memset that flushes the 60 MB L2; the
// median is reported. A call is polyhead::attention(problem, {.backend = "cuda"}), the whole
// library call (validation, block-map compilation where the mask needs one, launch). TFLOP/s =
// polyhead::forward_flops(problem) / time: 2 * Hq * (Dqk + Dv) * unmasked pairs.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cuda/fwd/dispatch.h"
#include "cuda_fwd_cases.h"
#include "gpu_sampler.h"
#include "polyhead/polyhead.h"
#include "timeline_report.h"

namespace {

using polyhead::bench::FwdBenchCase;

#define CHECK_CUDA(call)                                                                         \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                              \
    }                                                                                            \
  } while (0)

// Deterministic pseudo-random bf16 in about [-2, 2), made on the host once per size.
std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  std::vector<uint16_t> out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const float f = float(int64_t(x >> 40) - (int64_t(1) << 23)) / float(1 << 22);
    out[i] = polyhead::float_to_bf16(f);
  }
  return out;
}

polyhead::MaskSpec mask_of(const FwdBenchCase& c, bool* ok) {
  *ok = true;
  if (c.kind == "causal") return polyhead::MaskSpec::causal();
  if (c.kind == "window") return polyhead::MaskSpec::window(c.window - 1, 0);
  if (c.kind == "na2d") {
    try {
      const std::string g = std::to_string(c.na_grid), k = std::to_string(c.na_kernel);
      return polyhead::MaskSpec::parse("na:grid=" + g + "x" + g + ",kernel=" + k + "x" + k);
    } catch (const polyhead::Error&) {
      *ok = false;
    }
  }
  return polyhead::MaskSpec::none();
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) o += (ch == '"' || ch == '\\') ? std::string("\\") + ch : std::string(1, ch);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int repeats = 15;
  std::string json_path, cases_path, only;
  auto family = polyhead::cuda::FwdFamily::automatic;
  int ctas_cap = 0;
  // The options start at the dispatcher's defaults, so that a patch to a default is what runs.
  const polyhead::cuda::FwdOverrides defaults;
  bool persistent = defaults.ws_persistent, ws_na_tiles = defaults.ws_na_tiles, timeline = false;
  bool patch_order = true;
  int soak_ms = 0;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--quick")
      quick = true;
    else if (arg == "--repeats" && a + 1 < argc)
      repeats = std::atoi(argv[++a]);
    else if (arg == "--json" && a + 1 < argc)
      json_path = argv[++a];
    else if (arg == "--cases" && a + 1 < argc)
      cases_path = argv[++a];
    else if (arg == "--only" && a + 1 < argc)
      only = argv[++a];
    else if (arg == "--family" && a + 1 < argc && std::strcmp(argv[a + 1], "mma") == 0)
      family = polyhead::cuda::FwdFamily::mma_sync, ++a;
    else if (arg == "--family" && a + 1 < argc && std::strcmp(argv[a + 1], "wgmma") == 0)
      family = polyhead::cuda::FwdFamily::wgmma, ++a;
    else if (arg == "--family" && a + 1 < argc && std::strcmp(argv[a + 1], "ws") == 0)
      family = polyhead::cuda::FwdFamily::ws, ++a;
    else if (arg == "--family" && a + 1 < argc && std::strcmp(argv[a + 1], "auto") == 0)
      ++a;
    else if (arg == "--ctas" && a + 1 < argc)
      ctas_cap = std::atoi(argv[++a]);
    else if (arg == "--persistent")
      persistent = true;
    else if (arg == "--no-ws-na-tiles")
      ws_na_tiles = false;
    else if (arg == "--no-patch-order")
      patch_order = false;
    else if (arg == "--timeline")
      timeline = true;
    else if (arg == "--soak" && a + 1 < argc)
      soak_ms = std::atoi(argv[++a]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--repeats N] [--json F] [--cases F] [--only S] "
                   "[--family auto|mma|wgmma|ws] [--ctas N] [--no-patch-order] [--persistent] "
                   "[--no-ws-na-tiles] [--timeline] [--soak MS]\n",
                   argv[0]);
      return 1;
    }
  }
#if !POLYHEAD_CUDA_TIMELINE
  if (timeline) {
    std::fprintf(stderr,
                 "%s: --timeline needs a build configured with -DPOLYHEAD_CUDA_TIMELINE=ON\n",
                 argv[0]);
    return 2;
  }
#endif
  polyhead::cuda::FwdOverrides overrides;
  overrides.family = family, overrides.max_ctas = ctas_cap, overrides.patch_order = patch_order;
  overrides.ws_persistent = persistent, overrides.ws_na_tiles = ws_na_tiles;
  // Every option at the dispatcher's default: time the public call.
  const bool public_call = family == defaults.family && ctas_cap == defaults.max_ctas &&
                           patch_order == defaults.patch_order &&
                           persistent == defaults.ws_persistent &&
                           ws_na_tiles == defaults.ws_na_tiles;
  std::vector<FwdBenchCase> cases = polyhead::bench::fwd_bench_cases(quick);
  if (!only.empty()) {
    // Comma-separated substrings; a case runs when its name holds any of them.
    std::vector<std::string> parts;
    for (size_t at = 0; at <= only.size();) {
      const size_t comma = std::min(only.find(',', at), only.size());
      if (comma > at) parts.push_back(only.substr(at, comma - at));
      at = comma + 1;
    }
    std::erase_if(cases, [&](const FwdBenchCase& c) {
      return std::none_of(parts.begin(), parts.end(), [&](const std::string& s) {
        return c.name.find(s) != std::string::npos;
      });
    });
  }

  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t flush_bytes = size_t(512) << 20;
  void* flush = nullptr;
  CHECK_CUDA(cudaMalloc(&flush, flush_bytes));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  char bus_id[32] = {};
  CHECK_CUDA(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), 0));
  polyhead::bench::GpuSampler sampler(bus_id);

  std::string rows;
  std::string case_rows;
  std::printf("%-34s %10s %10s  %s\n", "case", "ms", "TFLOP/s", "note");
  if (!sampler.available()) std::printf("(NVML not loaded: no clock or power samples)\n");
  for (const FwdBenchCase& c : cases) {
    bool mask_ok = true;
    const polyhead::MaskSpec mask = mask_of(c, &mask_ok);
    const int64_t sq = c.seqlen_q > 0 ? c.seqlen_q : c.seqlen;
    const int64_t dv = c.head_dim_v > 0 ? c.head_dim_v : c.head_dim;
    const size_t nq = size_t(c.batch * sq * c.heads_q * c.head_dim);
    const size_t nk = size_t(c.batch * c.seqlen * c.heads_kv * c.head_dim);
    const size_t nv = size_t(c.batch * c.seqlen * c.heads_kv * dv);
    const size_t no = size_t(c.batch * sq * c.heads_q * dv);
    void *q, *k, *v, *o;
    CHECK_CUDA(cudaMalloc(&q, nq * 2));
    CHECK_CUDA(cudaMalloc(&k, nk * 2));
    CHECK_CUDA(cudaMalloc(&v, nv * 2));
    CHECK_CUDA(cudaMalloc(&o, no * 2));
    for (auto [ptr, n, seed] : {std::tuple{q, nq, 1}, std::tuple{k, nk, 2}, std::tuple{v, nv, 3}}) {
      const std::vector<uint16_t> h = random_bf16(n, uint64_t(seed));
      CHECK_CUDA(cudaMemcpy(ptr, h.data(), n * 2, cudaMemcpyHostToDevice));
    }
    const polyhead::Device gpu{polyhead::DeviceType::cuda, 0};
    polyhead::AttentionProblem p;
    p.q = polyhead::TensorView::contiguous(q, polyhead::DType::bf16,
                                           {c.batch, sq, c.heads_q, c.head_dim}, gpu);
    p.k = polyhead::TensorView::contiguous(k, polyhead::DType::bf16,
                                           {c.batch, c.seqlen, c.heads_kv, c.head_dim}, gpu);
    p.v = polyhead::TensorView::contiguous(v, polyhead::DType::bf16,
                                           {c.batch, c.seqlen, c.heads_kv, dv}, gpu);
    p.o = polyhead::TensorView::contiguous(o, polyhead::DType::bf16, {c.batch, sq, c.heads_q, dv},
                                           gpu);
    p.mask = mask;
    double flops = 0, ms = 0, soak_per_call = 0;
    polyhead::bench::GpuSamples timed, soaked;
    std::string note;
    if (!mask_ok) {
      note = "not run: mask kind not in this build";
    } else {
      try {
        // forward_flops needs host-readable geometry only; for the sizes here it is exact.
        flops = polyhead::forward_flops(p);
        polyhead::RunOptions opt{.backend = "cuda", .stream = stream};
        const polyhead::ProblemShape shape = polyhead::validate(p);
        auto call = [&] {
          if (public_call) {
            polyhead::attention(p, opt);
          } else {
            polyhead::cuda::fwd_run(p, shape, stream, overrides);
          }
        };
        call();  // warm-up (module load, smem attributes)
        CHECK_CUDA(cudaStreamSynchronize(stream));
        std::vector<float> times;
        sampler.start();
        for (int r = 0; r < repeats; ++r) {
          CHECK_CUDA(cudaMemsetAsync(flush, r & 0xff, flush_bytes, stream));
          CHECK_CUDA(cudaEventRecord(start, stream));
          call();
          CHECK_CUDA(cudaEventRecord(stop, stream));
          CHECK_CUDA(cudaEventSynchronize(stop));
          float t = 0;
          CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
          times.push_back(t);
        }
        timed = sampler.stop();
        std::sort(times.begin(), times.end());
        ms = times[times.size() / 2];
        if (soak_ms > 0) {
          // Back to back for soak_ms of GPU time, queued 16 calls at a time.
          sampler.start();
          int calls = 0;
          float elapsed = 0;
          CHECK_CUDA(cudaEventRecord(start, stream));
          while (elapsed < float(soak_ms)) {
            for (int r = 0; r < 16; ++r, ++calls) call();
            CHECK_CUDA(cudaEventRecord(stop, stream));
            CHECK_CUDA(cudaEventSynchronize(stop));
            CHECK_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
          }
          soaked = sampler.stop();
          soak_per_call = double(elapsed) / calls;
        }
#if POLYHEAD_CUDA_TIMELINE
        if (timeline) {
          // One more call with the phase timestamps on; the grid has at most q_tiles x heads x
          // batch CTAs (the dispatcher's tiles are at least 64 rows).
          const size_t ctas = size_t((sq + 63) / 64 * c.heads_q * c.batch);
          const size_t n = ctas * polyhead::cuda::kTimelineFields;
          unsigned long long* words = nullptr;
          CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&words), n * 8));
          CHECK_CUDA(cudaMemsetAsync(words, 0, n * 8, stream));
          polyhead::cuda::FwdOverrides ov = overrides;
          ov.timeline = words;
          sampler.start();
          polyhead::cuda::fwd_run(p, shape, stream, ov);
          CHECK_CUDA(cudaStreamSynchronize(stream));
          const polyhead::bench::GpuSamples during = sampler.stop();
          std::vector<uint64_t> host(n);
          CHECK_CUDA(cudaMemcpyAsync(host.data(), words, n * 8, cudaMemcpyDeviceToHost, stream));
          CHECK_CUDA(cudaStreamSynchronize(stream));
          CHECK_CUDA(cudaFree(words));
          // Cycles to microseconds at the SM clock sampled during the call where NVML gave one;
          // else at the device's rated clock.
          int khz = 0;
          CHECK_CUDA(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
          polyhead::bench::print_timeline(c.name, host,
                                          during.count > 0 ? during.sm_mhz : khz / 1000.0);
        }
#endif
      } catch (const polyhead::Error& e) {
        sampler.stop();  // when the error came between start and stop
        timed = soaked = polyhead::bench::GpuSamples{};
        note = std::string("error: ") + e.what();
      }
    }
    const double tflops = ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0.0;
    const double soak_tflops = soak_per_call > 0 ? flops / (soak_per_call * 1e-3) / 1e12 : 0.0;
    // The samples of the timed calls and of the soak: " (MHz, W, capped share)" on the printed
    // line, and the same fields (soak ones prefixed soak_) in the JSON row.
    std::string clocks, extra;
    char buf[1024];
    for (const auto& [soak, g] : {std::pair{false, &timed}, std::pair{true, &soaked}}) {
      if (g->count == 0) continue;
      std::snprintf(buf, sizeof(buf), "%s%s%.0f MHz, %.0f W, capped %.0f%%",
                    clocks.empty() ? "" : "; ", soak ? "soak " : "", g->sm_mhz, g->watts,
                    100 * g->power_capped);
      clocks += buf;
      const char* x = soak ? "soak_" : "";
      std::snprintf(buf, sizeof(buf),
                    ", \"%ssm_mhz\": %.1f, \"%ssm_mhz_min\": %d, \"%ssm_mhz_max\": %d, "
                    "\"%swatts\": %.1f, \"%spower_capped\": %.3f, \"%sthermal\": %.3f, "
                    "\"%ssamples\": %d",
                    x, g->sm_mhz, x, g->sm_mhz_min, x, g->sm_mhz_max, x, g->watts, x,
                    g->power_capped, x, g->thermal, x, g->count);
      extra += buf;
    }
    if (soak_per_call > 0) {
      std::snprintf(buf, sizeof(buf), "; soak %.1f TFLOP/s", soak_tflops);
      clocks += buf;
      std::snprintf(buf, sizeof(buf), ", \"soak_ms\": %.6f, \"soak_tflops\": %.3f", soak_per_call,
                    soak_tflops);
      extra += buf;
    }
    const std::string shown =
        clocks.empty() ? note : note + (note.empty() ? "(" : " (") + clocks + ")";
    std::printf("%-34s %10.3f %10.1f  %s\n", c.name.c_str(), ms, tflops, shown.c_str());
    std::fflush(stdout);
    std::snprintf(buf, sizeof(buf),
                  "%s    {\"name\": \"%s\", \"ms\": %.6f, \"tflops\": %.3f, \"flops\": %.6e, "
                  "\"note\": \"%s\"%s}",
                  rows.empty() ? "" : ",\n", c.name.c_str(), ms, tflops, flops,
                  json_escape(note).c_str(), extra.c_str());
    rows += buf;
    std::snprintf(buf, sizeof(buf),
                  "%s    {\"name\": \"%s\", \"kind\": \"%s\", \"batch\": %lld, \"seqlen\": %lld, "
                  "\"seqlen_q\": %lld, \"heads_q\": %lld, \"heads_kv\": %lld, \"head_dim\": %lld, "
                  "\"head_dim_v\": %lld, "
                  "\"window\": %lld, \"na_grid\": %lld, \"na_kernel\": %lld, \"flops\": %.6e}",
                  case_rows.empty() ? "" : ",\n", c.name.c_str(), c.kind.c_str(),
                  (long long)c.batch, (long long)c.seqlen, (long long)sq, (long long)c.heads_q,
                  (long long)c.heads_kv, (long long)c.head_dim, (long long)dv, (long long)c.window,
                  (long long)c.na_grid, (long long)c.na_kernel, flops);
    case_rows += buf;
    for (void* ptr : {q, k, v, o}) CHECK_CUDA(cudaFree(ptr));
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << "{\n  \"gpu\": \"" << prop.name << "\",\n  \"sms\": " << prop.multiProcessorCount
      << ",\n  \"repeats\": " << repeats << ",\n  \"results\": [\n"
      << rows << "\n  ]\n}\n";
  }
  if (!cases_path.empty()) {
    std::ofstream f(cases_path);
    f << "[\n" << case_rows << "\n]\n";
  }
  return 0;
}
