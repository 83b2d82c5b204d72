// The generic mask path of the forward kernels: the host compiles the problem's BlockMap for
// the kernel's tile shape (core/, every mask kind) into the CSR arrays of FwdBlockMap, which
// the dispatcher uploads with the call's other small inputs (device_upload.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/problem_access.h"
#include "cuda/fwd/params.h"
#include "polyhead/block_map.h"
#include "polyhead/problem.h"

namespace polyhead::cuda {

struct HostBlockMap {
  std::vector<int32_t> row_start;  // [nseq * Hq]
  std::vector<int32_t> row_ptr;    // [rows + 1]
  std::vector<int32_t> tiles;      // [entries][2]: key tile, partial slot or -1
  std::vector<uint32_t> bits;      // [slots][tile.m][tile.n / 32]
};

// Compiles `p.mask` over every sequence for `tile` (tile.n a multiple of 32). Heads in one
// row group of the mask rule and sequences of one geometry share their rows. Throws Error if
// a count overflows int32.
HostBlockMap build_block_map(const AttentionProblem& p, const ProblemShape& s,
                             const std::vector<detail::Sequence>& seqs, TileShape tile);

}  // namespace polyhead::cuda
