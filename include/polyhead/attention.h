// Entry points: run attention on a backend, probe support, count FLOPs.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyhead/problem.h"

namespace polyhead {

struct Status {
  bool ok = true;
  std::string reason;  // why not, when !ok
  static Status yes() { return {}; }
  static Status no(std::string why) { return {false, std::move(why)}; }
  explicit operator bool() const { return ok; }
};

struct RunOptions {
  // "auto" picks the fastest backend that supports the problem; or "reference", "cpu", "cuda".
  std::string backend = "auto";
  void* stream = nullptr;  // cudaStream_t for the cuda backend; nullptr = default stream
  int num_threads = 0;     // cpu backend threads; 0 = OpenMP's default
};

struct BackendInfo {
  std::string name;
  bool available = false;   // usable on this machine (e.g. a GPU is present)
  std::string description;  // what it runs, or why it is unavailable
};

// Runs the forward pass; throws Error (leaving o and lse untouched) if the problem is invalid
// or the chosen backend does not support it.
void attention(const AttentionProblem& problem, const RunOptions& options = {});

// Whether `backend` can run the problem, and if not why. Throws Error for invalid problems.
Status supports(const AttentionProblem& problem, std::string_view backend);

// The backend "auto" would choose.
std::string choose_backend(const AttentionProblem& problem);

std::vector<BackendInfo> backends();

// Visible (i, j) pairs summed over batch and query heads, and the forward FLOPs
// 2 * (Dqk + Dv) * pairs (DESIGN.md section 2).
int64_t unmasked_pairs(const AttentionProblem& problem);
double forward_flops(const AttentionProblem& problem);

std::string version();

}  // namespace polyhead
