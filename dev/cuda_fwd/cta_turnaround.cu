// How long an SM takes to retire one CTA and start the next, for CTAs shaped like the
// warp-specialized forward kernel's (384 threads, one CTA per SM by shared memory, most of the
// register file), against smaller ones. Each CTA spins for a fixed number of SM cycles, so a
// grid of W full waves takes W * (spin + turnaround); the turnaround is what is left.
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o /tmp/cta_turnaround \
//        dev/cuda_fwd/cta_turnaround.cu && /tmp/cta_turnaround
//
// Not part of the build: a measurement for dev/cuda_fwd/README.md (the per-item cost).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#define CHECK(x)                                                                      \
  do {                                                                                \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

// Thread 0 of each CTA records its SM, its first instruction, the moment past the CTA barrier
// and its last instruction, in SM cycles (clock64 counts per SM, so only marks of one SM
// compare).
struct Marks {
  long long start, synced, end;
  int sm;
};

// kRegs values spun on for `cycles` SM cycles, all live to the end (their sum), so that kRegs
// sets the register count (150: near the forward kernel's 168); `seed`, where given, varies
// the start values. kUnroll copies of the update make the loop body: at kUnroll 128 the kernel
// is about 5.5k instructions (88 KB; nvcc does not unroll it all), more code than the forward
// kernel's loop runs per key tile, so the instruction caches should hold little of the
// prologue when the SM's next CTA starts.
template <int kRegs, int kUnroll = 1>
__device__ __forceinline__ float spin_values(long long cycles, const int* seed) {
  float acc[kRegs];
#pragma unroll
  for (int i = 0; i < kRegs; ++i) acc[i] = float(threadIdx.x + i + (seed ? seed[i] : 0));
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int i = 0; i < kRegs; ++i) acc[i] = acc[i] * 0.999f + float(u + 1);
    }
  }
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kRegs; ++i) s += acc[i];
  return s;
}

// The forward kernel's barrier set-up before its CTA barrier (fwd_ws/kernel.cuh,
// init_ws_barriers), in the forms to compare. Call 73: the kernel's form took the
// start-to-barrier time from 10 to 255 cycles. In the SASS each mbarrier.init is a
// SYNCS.EXCH.64 (FENCE.VIEW.ASYNC.S once before them) and fence.mbarrier_init.release.cluster
// emits nothing, so what costs is the 13 exchanges of one thread.
enum Init : int {
  kNoInit = 0,
  kInitAll,  // thread 0: 13 mbarrier.init, then fence.mbarrier_init (the kernel's form)
  kInitTen,  // thread 0: the 10 the plain kernel's first tile needs (Q, 3 x K, V, empty)
  kWarps4,   // lane 0 of warps 0-3: barriers w, w + 4, w + 8 (and 12)
  kWarps12,  // lane 0 of warps 0-11: barrier w (warp 0 also 12)
};

__device__ __forceinline__ void mbarrier_init(uint32_t at, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(at), "r"(count));
}

template <int kMode>
__device__ __forceinline__ void init_13_barriers() {
  extern __shared__ float smem[];
  const uint32_t base = uint32_t(__cvta_generic_to_shared(smem));
  const int t = int(threadIdx.x);
  if constexpr (kMode == kInitAll || kMode == kInitTen) {
    if (t != 0) return;
#pragma unroll
    for (int b = 0; b < (kMode == kInitTen ? 10 : 13); ++b) {
      mbarrier_init(base + 8u * b, b % 3 ? 1 : 256);
    }
  } else {
    constexpr int kWarps = kMode == kWarps4 ? 4 : 12;
    const int warp = __shfl_sync(0xffffffffu, t / 32, 0);  // warp-uniform: no R2UR loop
    if ((t & 31) != 0 || warp >= kWarps) return;
#pragma unroll
    for (int j = 0; j < (13 + kWarps - 1) / kWarps; ++j) {
      const int bi = warp + j * kWarps;
      if (bi < 13) mbarrier_init(base + 8u * bi, 1);
    }
  }
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// The CTA's marks, by thread 0 after a last CTA barrier.
__device__ __forceinline__ void record_marks(Marks* marks, long long start, long long synced) {
  __syncthreads();
  if (threadIdx.x == 0) {
    int sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    marks[blockIdx.x] = {start, synced, clock64(), sm};
  }
}

// kStoreBytes: each CTA writes that many bytes to `out` at its end (16 B per thread and store),
// as the forward kernel writes its O tile.
template <int kThreads, int kRegs, int kStoreBytes = 0>
__global__ void __launch_bounds__(kThreads, 1)
    spin(long long cycles, float* sink, Marks* marks, uint4* out) {
  extern __shared__ float smem[];
  const long long start = clock64();
  __syncthreads();
  const long long synced = clock64();
  const float s = spin_values<kRegs>(cycles, nullptr);
  if (s == 12345.0f) sink[threadIdx.x] = s + smem[threadIdx.x];  // never true; keeps acc live
  uint4* o = out + size_t(blockIdx.x) * (kStoreBytes / 16);
  for (int k = threadIdx.x; k < kStoreBytes / 16; k += kThreads) o[k] = make_uint4(k, 1, 2, 3);
  record_marks(marks, start, synced);
}

// As the warp-specialized kernel launches: 384 threads, a 1.5 KB __grid_constant__ parameter
// block (FwdParams and four tensor maps take 1056 bytes), and setmaxnreg: warpgroup 0 gives its
// registers back and the two others take 232 each. kInit: the mbarrier set-up first (Init);
// kUnroll: the spin loop's code size (spin_values).
struct BigParams {
  long long cycles;
  float* sink;
  Marks* marks;
  uint4* out;
  int pad[368];
};

template <int kRegs, int kInit = kNoInit, int kUnroll = 1>
__global__ void __launch_bounds__(384, 1) spin_ws(const __grid_constant__ BigParams p) {
  extern __shared__ float smem[];
  const long long start = clock64();
  if constexpr (kInit != kNoInit) init_13_barriers<kInit>();
  __syncthreads();
  const long long synced = clock64();
  const int wg = __shfl_sync(0xffffffffu, int(threadIdx.x) / 128, 0);
  float s = 0.0f;
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
    s = spin_values<kRegs, kUnroll>(p.cycles, p.pad);
  }
  if (s == 12345.0f) p.sink[threadIdx.x] = s + smem[threadIdx.x];
  record_marks(p.marks, start, synced);
}

// Medians over CTAs of the cycles from a CTA's first instruction to past its barrier, and from
// one CTA's end to the next CTA's start on the same SM.
void gaps(const std::vector<Marks>& m, double& to_barrier, double& gap) {
  std::vector<double> b, g;
  std::vector<std::vector<Marks>> per_sm(1024);
  for (const Marks& x : m) {
    b.push_back(double(x.synced - x.start));
    per_sm[x.sm & 1023].push_back(x);
  }
  for (auto& v : per_sm) {
    std::sort(v.begin(), v.end(), [](const Marks& x, const Marks& y) { return x.start < y.start; });
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i].start > v[i - 1].end) g.push_back(double(v[i].start - v[i - 1].end));
    }
  }
  auto median = [](std::vector<double>& v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  to_barrier = median(b);
  gap = median(g);
}

// Times `launch` (a grid of `grid` CTAs): the median of 11 calls in `us`, and the medians of
// the CTAs' marks (gaps).
template <typename Launch>
int measure(Launch launch, int grid, Marks* marks, double& us, double& to_barrier, double& gap) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int r = 0; r < 11; ++r) {
    CHECK(cudaEventRecord(a));
    launch();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  us = 1000.0 * ms[ms.size() / 2];
  std::vector<Marks> m(grid);
  CHECK(cudaMemcpy(m.data(), marks, grid * sizeof(Marks), cudaMemcpyDeviceToHost));
  gaps(m, to_barrier, gap);
  return 0;
}

template <int kThreads, int kRegs, int kStoreBytes = 0>
int run(const char* name, int smem_bytes, int sms, float* sink, Marks* marks, uint4* out) {
  auto k = spin<kThreads, kRegs, kStoreBytes>;
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  cudaFuncAttributes attr{};
  CHECK(cudaFuncGetAttributes(&attr, k));
  int per_sm = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, kThreads, smem_bytes));
  int clock_khz = 0;
  CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  for (long long spin_cycles : {0LL, 10000LL, 40000LL}) {
    for (int waves : {1, 16}) {
      const int grid = sms * per_sm * waves;
      double us = 0, to_barrier = 0, gap = 0;
      auto launch = [&] { k<<<grid, kThreads, smem_bytes>>>(spin_cycles, sink, marks, out); };
      if (measure(launch, grid, marks, us, to_barrier, gap) != 0) return 1;
      std::printf(
          "%-26s regs %3d smem %6d B, %d CTA/SM, spin %6lld cycles, %2d waves: %8.2f us"
          " = %6.3f us per wave; median cycles: start to barrier %5.0f, gap between"
          " CTAs of an SM %5.0f\n",
          name, attr.numRegs, smem_bytes, per_sm, spin_cycles, waves, us, us / waves, to_barrier,
          gap);
    }
  }
  std::printf("  (rated clock %d MHz; per-wave time minus spin / clock is the turnaround)\n",
              clock_khz / 1000);
  return 0;
}

template <int kInit = kNoInit, int kUnroll = 1>
int run_ws(const char* name, int sms, float* sink, Marks* marks, uint4* out) {
  auto k = spin_ws<150, kInit, kUnroll>;
  const int smem_bytes = 224 * 1024;
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  cudaFuncAttributes attr{};
  CHECK(cudaFuncGetAttributes(&attr, k));
  for (long long spin_cycles : {0LL, 10000LL}) {
    const int waves = 16, grid = sms * waves;
    const BigParams p{spin_cycles, sink, marks, out, {}};
    double us = 0, to_barrier = 0, gap = 0;
    if (measure([&] { k<<<grid, 384, smem_bytes>>>(p); }, grid, marks, us, to_barrier, gap) != 0) {
      return 1;
    }
    std::printf(
        "%-40s regs %d, spin %6lld cycles, %d waves: %.3f us per wave; start to barrier %5.0f,"
        " gap between CTAs of an SM %5.0f\n",
        name, attr.numRegs, spin_cycles, waves, us / waves, to_barrier, gap);
  }
  return 0;
}

int main() {
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  float* sink = nullptr;
  Marks* marks = nullptr;
  CHECK(cudaMalloc(&sink, 1024 * sizeof(float)));
  CHECK(cudaMalloc(&marks, size_t(sms) * 2 * 16 * sizeof(Marks)));
  uint4* out = nullptr;  // 32 KB per CTA of the largest grid
  CHECK(cudaMalloc(&out, size_t(sms) * 2 * 16 * 32768));
  int rc = run_ws("ws-like, 224 KB smem", sms, sink, marks, out);
  rc |= run_ws<kInitAll>("ws-like, 13 mbarrier inits", sms, sink, marks, out);
  rc |= run_ws<kNoInit, 128>("ws-like, 88 KB loop", sms, sink, marks, out);
  rc |= run_ws<kInitAll, 128>("ws-like, 13 mbarrier inits, 88 KB loop", sms, sink, marks, out);
  rc |= run_ws<kInitTen>("ws-like, 10 mbarrier inits", sms, sink, marks, out);
  rc |= run_ws<kWarps4>("ws-like, 13 inits by 4 warps", sms, sink, marks, out);
  rc |= run_ws<kWarps12>("ws-like, 13 inits by 12 warps", sms, sink, marks, out);
  rc |= run<384, 150>("384 thr, ws-like", 200 * 1024, sms, sink, marks, out);
  rc |= run<384, 150, 32768>("384 thr, ws-like, 32 KB out", 200 * 1024, sms, sink, marks, out);
  rc |= run<384, 8, 32768>("384 thr, few regs, 32 KB out", 200 * 1024, sms, sink, marks, out);
  rc |= run<384, 70>("384 thr, half the regs", 200 * 1024, sms, sink, marks, out);
  rc |= run<384, 8>("384 thr, few regs", 200 * 1024, sms, sink, marks, out);
  rc |= run<128, 8>("128 thr, few regs", 200 * 1024, sms, sink, marks, out);
  rc |= run<384, 8>("384 thr, 2 CTA/SM by smem", 100 * 1024, sms, sink, marks, out);
  CHECK(cudaFree(sink));
  CHECK(cudaFree(marks));
  CHECK(cudaFree(out));
  return rc;
}
