// GPU timing of one benchmark case (DESIGN.md section 7), built with POLYHEAD_CUDA: inputs copied
// to GPU 0 once per tensor shape, one warm-up call, then timed calls between CUDA events on one
// stream, each after a 512 MiB memset that evicts the 60 MB L2. A call is the whole library call
// (validation, block-map compilation where the mask needs one, launch). Peak memory is the high-
// water mark of the device's default memory pool, which holds the inputs, the outputs and the
// library's per-call uploads.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "bench.h"
#include "polyhead/attention.h"
#include "polyhead/error.h"

namespace polyhead::cli {
namespace {

constexpr size_t kFlushBytes = size_t(512) << 20;
constexpr double kMinSeconds = 0.05;  // tiny cases repeat until this much device time passed

class CudaFailure : public std::runtime_error {
 public:
  CudaFailure(cudaError_t status, const char* call)
      : std::runtime_error(std::string(call) + ": " + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")"),
        status_(status) {}
  cudaError_t status() const { return status_; }

 private:
  cudaError_t status_;
};

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw CudaFailure(status, call);
}

// The process-wide device state: a stream, two events, the flush buffer (plain cudaMalloc, so
// outside the pool whose high-water mark is reported) and the inputs of the last shape.
struct DeviceState {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  void* flush = nullptr;
  cudaMemPool_t pool = nullptr;
  std::vector<int64_t> input_key;  // dtype and shapes of the cached inputs
  int64_t input_bytes = 0;
  void* q = nullptr;
  void* k = nullptr;
  void* v = nullptr;

  DeviceState() {
    check(cudaSetDevice(0), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    check(cudaMalloc(&flush, kFlushBytes), "cudaMalloc (L2 flush buffer)");
    check(cudaDeviceGetDefaultMemPool(&pool, 0), "cudaDeviceGetDefaultMemPool");
  }

  void free_inputs() {
    for (void** p : {&q, &k, &v}) {
      if (*p != nullptr) cudaFreeAsync(*p, stream);
      *p = nullptr;
    }
    input_key.clear();
    input_bytes = 0;
    cudaStreamSynchronize(stream);
  }

  void reset_peak() {
    uint64_t zero = 0;  // resets the mark to the memory in use now
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero);
  }
  int64_t peak() {
    uint64_t high = 0;
    cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high);
    return int64_t(high);
  }
};

DeviceState* g_state = nullptr;  // set once the state is made

DeviceState& state() {
  static DeviceState s;
  g_state = &s;
  return s;
}

// A pool allocation on the stream that frees itself.
struct PoolBuffer {
  void* ptr = nullptr;
  cudaStream_t stream = nullptr;
  PoolBuffer(size_t bytes, cudaStream_t s) : stream(s) {
    check(cudaMallocAsync(&ptr, bytes == 0 ? 16 : bytes, s), "cudaMallocAsync");
  }
  ~PoolBuffer() {
    if (ptr) cudaFreeAsync(ptr, stream);
  }
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;
};

double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

// Copies this case's inputs to the device unless the last case had the same shapes (its values
// are the same too: every case draws its inputs from seed 1).
void upload_inputs(DeviceState& st, const CaseSpec& spec) {
  const std::vector<int64_t> key = {int64_t(spec.dtype), spec.tensor_batch(), spec.total_q(),
                                    spec.total_k(),      spec.heads_q,        spec.heads_kv,
                                    spec.head_dim_qk,    spec.head_dim_v};
  if (key == st.input_key) return;
  st.free_inputs();
  const CaseData host(spec, 1, CaseData::Fill::values);
  for (auto [dst, src] :
       {std::pair{&st.q, &host.q()}, std::pair{&st.k, &host.k()}, std::pair{&st.v, &host.v()}}) {
    check(cudaMallocAsync(dst, size_t(src->bytes()), st.stream), "cudaMallocAsync (inputs)");
    check(
        cudaMemcpyAsync(*dst, src->data(), size_t(src->bytes()), cudaMemcpyHostToDevice, st.stream),
        "cudaMemcpyAsync (inputs)");
  }
  check(cudaStreamSynchronize(st.stream), "cudaStreamSynchronize");
  st.input_key = key;
  st.input_bytes = host.input_bytes();
}

bool out_of_memory(const std::string& message) {
  return message.find("out of memory") != std::string::npos ||
         message.find("MemoryAllocation") != std::string::npos;
}

}  // namespace

std::string cuda_device_name() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return "";
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "";
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB", double(prop.totalGlobalMem) / double(1 << 30));
  std::string name = prop.name;
  name += " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " + memory + ")";
  return name;
}

BenchResult time_case_cuda(const CaseSpec& spec, const BenchSettings& settings) {
  BenchResult r;
  r.spec = spec;
  r.backend = settings.backend;
  r.tensor_bytes = spec.tensor_bytes();
  try {
    DeviceState& st = state();
    const CaseData data(spec, 1, CaseData::Fill::none);
    if (!data.mask().is_dynamic()) count_case(spec, data, r);
    size_t free_bytes = 0, total_bytes = 0;
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    // The cached inputs of another shape are freed before this case's are made.
    if (r.tensor_bytes > int64_t(free_bytes) + st.input_bytes) {
      r.outcome = Outcome::oom;
      r.reason = "needs " + std::to_string(r.tensor_bytes >> 20) + " MiB on the device; " +
                 std::to_string(free_bytes >> 20) + " MiB free";
      return r;
    }
    upload_inputs(st, spec);
    st.reset_peak();
    const int64_t e = dtype_size(spec.dtype);
    const std::vector<int64_t> os = spec.o_shape(), ls = spec.lse_shape();
    PoolBuffer o(size_t(os[0] * os[1] * os[2] * os[3] * e), st.stream);
    PoolBuffer lse(size_t(ls[0] * ls[1] * ls[2] * 4), st.stream);
    const Device gpu{DeviceType::cuda, 0};
    const auto view = [&](void* p, DType t, std::vector<int64_t> s) {
      return TensorView::contiguous(p, t, {s[0], s[1], s[2], s[3]}, gpu);
    };
    const int64_t b = spec.tensor_batch();
    const AttentionProblem p = data.problem_on(
        view(st.q, spec.dtype, {b, spec.total_q(), spec.heads_q, spec.head_dim_qk}),
        view(st.k, spec.dtype, {b, spec.total_k(), spec.heads_kv, spec.head_dim_qk}),
        view(st.v, spec.dtype, {b, spec.total_k(), spec.heads_kv, spec.head_dim_v}),
        view(o.ptr, spec.dtype, os),
        TensorView::contiguous(lse.ptr, DType::f32, {ls[0], ls[1], ls[2]}, gpu));
    if (const Status s = supports(p, settings.backend); !s) {
      r.outcome = Outcome::unsupported;
      r.reason = s.reason;
      return r;
    }
    const RunOptions opt{.backend = settings.backend, .stream = st.stream};
    attention(p, opt);  // warm-up: module load, shared-memory attributes, block-map cache
    check(cudaStreamSynchronize(st.stream), "warm-up");
    const int repeats = spec.repeats > 0 ? spec.repeats : settings.repeats;
    std::vector<double> seconds;
    double total = 0.0;
    const auto wall0 = std::chrono::steady_clock::now();
    while (true) {
      const int runs = int(seconds.size());
      const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall0;
      const bool enough = runs >= repeats || (runs >= 3 && wall.count() >= settings.max_seconds);
      if (enough && !(total < kMinSeconds && runs < 100 * repeats)) break;
      check(cudaMemsetAsync(st.flush, runs & 0xff, kFlushBytes, st.stream), "L2 flush");
      check(cudaEventRecord(st.start, st.stream), "cudaEventRecord");
      attention(p, opt);
      check(cudaEventRecord(st.stop, st.stream), "cudaEventRecord");
      check(cudaEventSynchronize(st.stop), "cudaEventSynchronize");
      float ms = 0.0f;
      check(cudaEventElapsedTime(&ms, st.start, st.stop), "cudaEventElapsedTime");
      seconds.push_back(double(ms) * 1e-3);
      total += seconds.back();
    }
    r.peak_mem_bytes = st.peak();
    std::sort(seconds.begin(), seconds.end());
    r.runs = int(seconds.size());
    r.median_s = quantile(seconds, 0.5);
    r.p20_s = quantile(seconds, 0.2);
    r.p80_s = quantile(seconds, 0.8);
    r.gflops = r.flops / r.median_s * 1e-9;
  } catch (const CudaFailure& e) {
    r.outcome = e.status() == cudaErrorMemoryAllocation ? Outcome::oom : Outcome::error;
    r.reason = e.what();
    cudaGetLastError();  // clear a non-sticky error so that the next case can run
    if (g_state != nullptr) g_state->free_inputs();
  } catch (const std::bad_alloc&) {
    r.outcome = Outcome::oom;
    r.reason = "out of host memory";
  } catch (const std::exception& e) {
    r.outcome = out_of_memory(e.what()) ? Outcome::oom : Outcome::error;
    r.reason = e.what();
    cudaGetLastError();
  }
  return r;
}

}  // namespace polyhead::cli
