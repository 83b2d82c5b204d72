// The cpu backend's per-task kernel: one (sequence, query head, query tile), all of its key
// tiles, online softmax, output written once. Compiled for every SIMD target Highway knows
// and dispatched at run time.
#pragma once

#include <cstdint>
#include <vector>

#include "core/problem_access.h"
#include "polyhead/block_map.h"
#include "polyhead/problem.h"

namespace polyhead::cpu {

// Per-thread scratch. Buffers grow on first use and are then reused across tasks.
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace();

  enum Slot { kQt, kK, kV, kScores, kOut, kStats, kNumSlots };
  // 64-byte aligned buffer of at least `floats` floats for `slot`.
  float* get(Slot slot, size_t floats);

  std::vector<uint8_t> mask;   // [kBlockM][kBlockN] element rule of a partial tile
  std::vector<KeyTile> tiles;  // the key tiles of the current row of the block map

 private:
  float* buf_[kNumSlots] = {};
  size_t cap_[kNumSlots] = {};
};

struct TaskArgs {
  const AttentionProblem* problem = nullptr;
  const ProblemShape* shape = nullptr;
  const detail::Sequence* seq = nullptr;
  const BlockMap* map = nullptr;  // compiled for (kBlockM, kBlockN) over this sequence
  int64_t head = 0;
  int64_t q_tile = 0;
};

void run_task(const TaskArgs& task, Workspace& ws);

// Name of the SIMD target run_task dispatches to on this machine ("AVX2", "AVX3", ...).
const char* simd_target();

}  // namespace polyhead::cpu
