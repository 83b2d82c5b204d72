// The `cpu` backend: tiled online softmax over a BlockMap, threads over
// (sequence, query head, query tile) with OpenMP, SIMD kernels from tile_kernel.cpp.
#include <exception>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/problem_access.h"
#include "cpu/fast/tile_kernel.h"
#include "cpu/fast/tile_size.h"
#include "polyhead/block_map.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace polyhead::detail {
namespace {

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }

  BackendInfo info() const override {
    return {"cpu", true,
            std::string("tiled online softmax, ") + cpu::simd_target() + " SIMD, " +
                std::to_string(max_threads()) + " threads, tile " + std::to_string(cpu::kBlockM) +
                "x" + std::to_string(cpu::kBlockN)};
  }

  Status supports(const AttentionProblem& p, const ProblemShape&) const override {
    if (p.q.device.type != DeviceType::cpu) {
      return Status::no("tensors are on " + to_string(p.q.device) +
                        "; the cpu backend needs host memory");
    }
    if (p.q.dtype == DType::f64) {
      return Status::no(
          "q, k, v dtype f64 is not supported (f32, f16, bf16; the reference backend runs f64)");
    }
    if (p.cu_seqlens_q && p.cu_seqlens_q->device.type != DeviceType::cpu) {
      return Status::no("cu_seqlens must be host tensors for the cpu backend");
    }
    return Status::yes();
  }

  void forward(const AttentionProblem& p, const ProblemShape& s,
               const RunOptions& options) const override {
    const std::vector<Sequence> seqs = sequences(p, s);
    std::vector<BlockMap> maps;
    maps.reserve(seqs.size());
    struct Task {
      int64_t seq, head, q_tile;
    };
    std::vector<Task> tasks;
    for (size_t b = 0; b < seqs.size(); ++b) {
      maps.push_back(compile_mask(p, s, seqs[b], {cpu::kBlockM, cpu::kBlockN}));
      for (int64_t h = 0; h < s.heads_q; ++h) {
        for (int64_t qt = 0; qt < maps.back().q_tiles(); ++qt) tasks.push_back({int64_t(b), h, qt});
      }
    }
    const int threads = options.num_threads > 0 ? options.num_threads : max_threads();
    std::exception_ptr error;
#pragma omp parallel num_threads(threads)
    {
      cpu::Workspace ws;
#pragma omp for schedule(dynamic, 1)
      for (size_t t = 0; t < tasks.size(); ++t) {
        try {
          const Task& task = tasks[t];
          cpu::run_task(
              {&p, &s, &seqs[size_t(task.seq)], &maps[size_t(task.seq)], task.head, task.q_tile},
              ws);
        } catch (...) {
#pragma omp critical(polyhead_cpu_error)
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace

const Backend* cpu_backend() {
  static const CpuBackend backend;
  return &backend;
}

}  // namespace polyhead::detail
