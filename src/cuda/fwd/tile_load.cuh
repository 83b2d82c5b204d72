// Global -> shared tile copies of the tensor-core forward kernels: cp.async, 16 bytes per chunk,
// into any shared-memory layout. The mma.sync kernel pads its rows (mainloop.cuh), the Hopper
// kernel swizzles them (fwd_sm90/mainloop.cuh). A layout gives the byte offset of element
// (row, col) and whether stepping down kStep rows moves every column by the same distance
// (always for padded rows, for the swizzle only in whole 8-row atoms).
#pragma once

#include <cstdint>

#include "cuda/fwd/ptx.cuh"

namespace polyhead::cuda {

// Rows of kRowStride 16-bit elements.
template <int kRowStride>
struct PaddedRows {
  __host__ __device__ static constexpr uint32_t offset(int row, int col) {
    return uint32_t((row * kRowStride + col) * 2);
  }
  __host__ __device__ static constexpr bool uniform_step(int) { return true; }
};

// Loads rows [0, kRows) of a [rows, kCols] global tile (row stride `row_stride` elements, head
// dim contiguous) into `Layout` at `smem`; rows >= rows_valid are zero-filled and read nothing.
// Thread t copies chunks t + k * kThreads (exact_pv.cuh's Inf/NaN test relies on it).
template <int kRows, int kCols, int kThreads, typename Layout, typename Elem>
__device__ __forceinline__ void load_tile_rows(uint32_t smem, const Elem* gmem, int64_t row_stride,
                                               int rows_valid, int tid) {
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  constexpr int kRowStep = kThreads / kChunksPerRow;
  if constexpr (kThreads % kChunksPerRow == 0 && kRows % kRowStep == 0 &&
                Layout::uniform_step(kRowStep)) {
    // A thread keeps its column and walks rows kRowStep apart: one pointer bump per chunk,
    // instead of a precomputed 64-bit offset per chunk (which costs registers the mainloop
    // needs).
    const int row0 = tid / kChunksPerRow, col = (tid % kChunksPerRow) * 8;
    const Elem* src = gmem + int64_t(row0) * row_stride + col;
    const int64_t step = int64_t(kRowStep) * row_stride;
    uint32_t dst = smem + Layout::offset(row0, col);
#pragma unroll
    for (int it = 0; it < kRows / kRowStep; ++it) {
      const bool valid = row0 + it * kRowStep < rows_valid;
      ptx::cp_async_16(dst, valid ? src : gmem, valid);
      src += step;
      dst += Layout::offset(kRowStep, 0) - Layout::offset(0, 0);
    }
  } else {
#pragma unroll
    for (int it = 0; it < (kChunks + kThreads - 1) / kThreads; ++it) {
      const int c = tid + it * kThreads;
      if (kChunks % kThreads != 0 && c >= kChunks) break;
      const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
      const bool valid = row < rows_valid;
      const Elem* src = gmem + int64_t(valid ? row : 0) * row_stride + col;
      ptx::cp_async_16(smem + Layout::offset(row, col), src, valid);
    }
  }
}

}  // namespace polyhead::cuda
