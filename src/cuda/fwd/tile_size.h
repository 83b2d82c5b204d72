// Tile shapes of the tensor-core forward kernel (fwd/), one per head-dim pair. Host and device
// code both read them: the dispatcher compiles block maps for exactly these shapes.
//
// Each warp owns 16 * kMTiles query rows of the tile and keeps in registers its scores
// S (16 * kMTiles x kBlockN fp32) and output O (16 * kMTiles x Dv fp32). mma.sync m16n8k16
// spreads a 16x8 fp32 tile over 4 registers per thread, so per thread
//   S: kMTiles * kBlockN / 2 registers,   O: kMTiles * Dv / 2 registers.
// The budget is 255 registers per thread with two CTAs per SM (128 threads x 255 x 2 fits
// the 64 K register file); Q, K and V stay in shared memory (padded rows, see mainloop.cuh).
//
//   (Dqk, Dv)  tile M x N  warps  S+O regs  smem (KiB)  CTAs/SM  H200 bf16 16k dense/causal
//   (64, 64)   128 x 128   4      128+64     86          2        305 / 291 TFLOP/s (v2: 343 / 328)
//   (96, 96)   128 x 64    4      64+96      79          2        not benchmarked
//   (128,128)  128 x 64    4      64+128     84          2        345 / 314
//   (192,128)  128 x 64    8      32+64      100         1        not benchmarked (201 registers)
//   (256,256)  128 x 64    8      32+128     148         1        272 / 273 (v2: 297 / 299)
//
// 64-wide rows make S cheap at D = 64, so a 128-key tile halves the per-tile softmax
// bookkeeping there; at D >= 192 two 128-row tiles no longer fit the register file with 4
// warps, so 8 warps of 16 rows share one. These are FlashAttention-2's sm80/sm90 shapes; the
// numbers are this kernel on the H200 (docs/cuda-forward.md, dev/cuda_fwd/README.md), where
// PyTorch's FA2 reached 302 / 302, 344 / 327 and 313 / 297 TFLOP/s on the same cases. No tile
// sweep has been run yet. smem includes the P scratch of the exact path (exact_pv.cuh).

#pragma once

#include <cuda_bf16.h>

#include <type_traits>

namespace polyhead::cuda {

template <int Dqk, int Dv>
struct FwdTile;

template <int BlockM, int BlockN, int Warps, int MinBlocks>
struct FwdTileShape {
  static constexpr int kBlockM = BlockM;
  static constexpr int kBlockN = BlockN;
  static constexpr int kWarps = Warps;
  static constexpr int kThreads = Warps * 32;
  static constexpr int kMinBlocksPerSm = MinBlocks;  // __launch_bounds__ occupancy hint
};

template <>
struct FwdTile<64, 64> : FwdTileShape<128, 128, 4, 2> {};
template <>
struct FwdTile<96, 96> : FwdTileShape<128, 64, 4, 2> {};
template <>
struct FwdTile<128, 128> : FwdTileShape<128, 64, 4, 2> {};
template <>
struct FwdTile<192, 128> : FwdTileShape<128, 64, 8, 1> {};
template <>
struct FwdTile<256, 256> : FwdTileShape<128, 64, 8, 1> {};

// What every tensor-core kernel's traits share: the element type, the head dims, the tile shape
// (inherited from `Tile`) and the per-warp n8 tile counts of S and O that the score, softmax and
// epilogue code (softmax.cuh, epilogue.cuh, exact_pv.cuh) index.
template <typename Elem_, int Dqk, int Dv, typename Tile>
struct FwdTraitsBase : Tile {
  using Elem = Elem_;
  static constexpr bool kIsBf16 = std::is_same_v<Elem_, __nv_bfloat16>;
  static constexpr int kHeadDimQK = Dqk;
  static constexpr int kHeadDimV = Dv;
  static constexpr int kNTiles = Tile::kBlockN / 8;  // n8 tiles of S per warp
  static constexpr int kDTiles = Dv / 8;             // n8 tiles of O per warp
};

// Tiles of the Hopper kernel (fwd_sm90/, wgmma): two warpgroups of 64 query rows per CTA (per
// thread kBlockN / 2 + Dv / 2 fp32 of S and O in registers), with K and V double-buffered in
// shared memory. Wide key tiles amortize the per-tile softmax and barrier; at Dqk >= 192 the
// 128-wide S no longer fits beside O in 255 registers, so 64 keys. At Dqk = 64 and 128, two
// CTAs share each SM (128 registers per thread, 113 KiB of shared memory each with one Q
// buffer), so one CTA's softmax, barrier waits and epilogue overlap the other's products; at
// 128 that takes 64-key tiles (S 32 + O 64 registers). On the H200 (bf16, 16k tokens per
// batch): dense d64 at 16k ran at 390.7 TFLOP/s against 340.1 with one CTA of three
// warpgroups (192 x 128); at 512 tokens 300.5 against 225.8, causal 171.6 against 110.3. d128
// on two 128 x 64 CTAs against one 128 x 128 CTA, in one A/B run (bench/results/
// gpu-ab_NVIDIA-H200_2026-11-28_call1.md): 460.6 against 420.0 at 16k, 344.1 against 301.7 at
// 512, window 1024 309.4 against 294.0. Dqk must be a multiple of 64 (128-byte swizzle
// blocks), so 96 stays on the mma.sync kernel.
//
//   (Dqk, Dv)   tile M x N   CTAs/SM  smem (KiB, incl. P scratch of the exact path)
//   (64, 64)    128 x 128    2        113
//   (128,128)   128 x 64     2        113
//   (192,128)   128 x 64     1        145
//   (256,256)   128 x 64     1        209
template <int Dqk, int Dv>
struct FwdSm90Tile;
template <>
struct FwdSm90Tile<64, 64> : FwdTileShape<128, 128, 8, 2> {};
template <>
struct FwdSm90Tile<128, 128> : FwdTileShape<128, 64, 8, 2> {};
template <>
struct FwdSm90Tile<192, 128> : FwdTileShape<128, 64, 8, 1> {};
template <>
struct FwdSm90Tile<256, 256> : FwdTileShape<128, 64, 8, 1> {};

// Tiles of the warp-specialized Hopper kernel (fwd_ws/): 128 query rows (two consumer
// warpgroups of 64 rows, up to 232 registers per thread through setmaxnreg; with Consumers 1,
// 64 rows and one warpgroup) x kBlockN keys, K and V in a ring of kStages (K, V) stages filled
// by TMA; shared memory (KiB) is Q + kStages x (K + V) of 227. kOverlap and kPingPong pick the
// consumers' schedule (fwd_ws/consumer.cuh). kAutoMinKeys: the dispatcher picks this kernel over
// the wgmma one from this many keys per sequence on (-1: only when asked for, FwdFamily::ws).
// CtasPerSm 2 (d64) gives each CTA half of the SM: launched at 80 registers per thread, the
// consumers 104 and the producer 24 (with 112 it hung on the H200 in gpu-ab call 13: setmaxnreg.inc
// waits for registers the CTA's pool does not have). One consumer at two CTAs per SM launches
// at 128 registers: the consumer gets 232, the producer 24.
//
// Measured on the H200 (bf16, 16k tokens per batch; one gpu-ab call, bench/results/
// gpu-ab_NVIDIA-H200_2026-11-28_call7.md, TFLOP/s at 16k dense / causal):
//   d128: 2 stages serial 591 / 589, overlap 571 / 530, overlap + ping-pong 568 / 536, and with 3
//         stages overlap + ping-pong 677 / 665; the wgmma kernel ran 557 / 554 in another call.
//         At 512 keys the wgmma kernel was ahead (385 against 363) until the ws kernel's
//         epilogue went through shared memory: then 392.5 / 232.7 against 382.5 / 206.3
//         (bench/results/gpu-ab_NVIDIA-H200_2026-11-28_call12.md).
//   d256: serial 706 / 671, overlap 505 / 526, overlap + ping-pong 499 / 521 (the wgmma kernel:
//         539 / 540). A third stage does not fit.
//   d64: serial 407 / 401, overlap + ping-pong 400 / 396, below the wgmma kernel's two CTAs per SM
//         (423 / 421). Two ws CTAs per SM, 128 x 64 tiles, 4 stages, serial: 444.9 / 433.8
//         against the wgmma kernel's 423.1 / 421.5, and 3-8% ahead at every length from 512
//         (bench/results/gpu-ab_NVIDIA-H200_2026-11-28_call17.md).
//   (192, 128), MLA prefill, 16 heads, 16k tokens, dense / causal at 512, 2k, 8k keys (calls 10
//         and 11 of bench/results/gpu-ab_NVIDIA-H200_2026-11-28_call*.md): serial 418 / 251,
//         601 / 472, 672 / 617; overlap + ping-pong 372 / 233 at 512, 574 / 539 at 8k;
//         128 x 64 tiles with 3 or 4 stages 3-5% below serial 128 x 128 at 8k. The wgmma
//         kernel: 310 / 186, 388 / 311, 413 / 404.
//
//   (Dqk, Dv)   tile M x N   stages  schedule            smem   auto from
//   (64, 64)    128 x 64     4       serial, 2 per SM    81     any length
//   (128,128)   128 x 128    3       overlap, ping-pong  224    any length
//   (192,128)   128 x 128    2       serial              208    any length
//   (256,256)   128 x 64     2       serial              192    any length
template <int BlockN, int Stages, bool Overlap, bool PingPong, int AutoMinKeys, int CtasPerSm = 1,
          int Consumers = 2>
struct FwdWsShape : FwdTileShape<64 * Consumers, BlockN, 4 * Consumers, CtasPerSm> {
  static constexpr int kConsumers = Consumers;  // warpgroups of 64 query rows
  // The persistent form's exact-pass list holds one entry per consumer warpgroup and item, with
  // room for two per item (fwd/dispatch.cpp).
  static_assert(Consumers == 1 || Consumers == 2, "one or two consumer warpgroups");
  static constexpr int kStages = Stages;
  static constexpr bool kOverlap = Overlap;
  static constexpr bool kPingPong = Overlap && PingPong && Consumers == 2;
  static constexpr int kAutoMinKeys = AutoMinKeys;
  static constexpr bool kPrefetchBits = false;  // block-map bits a tile ahead (fwd_ws/consumer.cuh)
};
template <int Dqk, int Dv>
struct FwdWsTile;
template <>
struct FwdWsTile<64, 64> : FwdWsShape<64, 4, false, false, 0, 2> {};
template <>
struct FwdWsTile<128, 128> : FwdWsShape<128, 3, true, true, 0> {};
template <>
struct FwdWsTile<192, 128> : FwdWsShape<128, 2, false, false, 0> {};
template <>
struct FwdWsTile<256, 256> : FwdWsShape<64, 2, false, false, 0> {};

// Neighborhood tiles of the warp-specialized kernel (default, FwdOverrides::ws_na_tiles): 64 x 64
// tiles over 8 x 8 sub-patches in patch order (token_order.h), for rank-2 neighborhoods: one
// consumer warpgroup per CTA and two CTAs per SM. 17 x 17 on a 128 x 128 grid then computes the
// 9 key tiles of 64 an 8 x 8 query sub-patch sees (576 keys per query), where a 128-row tile
// computes 12 (768 keys, the union of its two halves' 9) and 128-key tiles 9 of 128 (1152).
// Measured in one call each (NA-2D 17x17 d128, TFLOP/s):
//   128 x 128 tiles 109.6; 128 x 64 serial 117.6; 128 x 64 with overlap + ping-pong 124.2
//     (gpu-ab call 14), with the block-map bits a tile ahead (kPrefetchBits) 135.9 (call 16).
//     Per-warpgroup skipping of the tiles a 64-row half cannot see, no ping-pong, 6 stages and
//     two map tiles per 128-key stage all ran at 0.94-1.01x of that (calls 19-22,
//     dev/cuda_fwd/rejected/). ncu's source view (call 30) put 35-40% of the consumers' samples
//     outside the main loop: an item of 12 tiles of 64 keys is short, and one CTA per SM leaves
//     the tensor cores idle through each item's Q wait, first tile and epilogue.
//   64 x 64, two CTAs per SM, 2 stages (80 KiB each), overlap (no ping-pong: the other CTA's
//     products fill the tensor cores), bits ahead: 171.0 against 143.8 (1.189x, call 32); the
//     same serial 154.4. Three shared stages do not fit two CTAs; separate K and V rings of 3
//     and 2 stages do, and ran 1.010x (call 36, dev/cuda_fwd/rejected/ws-na-k3v2.patch).
// Only the pairs specialized here have them.
template <int Dqk, int Dv>
struct FwdWsNaTile;
template <>
struct FwdWsNaTile<128, 128> : FwdWsShape<64, 2, true, false, -1, 2, 1> {
  static constexpr bool kPrefetchBits = true;
};
template <int Dqk, int Dv>
inline constexpr bool kHasWsNaTile = requires {
  FwdWsNaTile<Dqk, Dv>::kBlockN;
};

// Tile of the fp32 SIMT kernel (fwd_simt/): 32 query rows (8 per warp) x 32 keys, one key per
// lane when scoring and 32 output columns per lane group when accumulating.
inline constexpr int kSimtBlockM = 32;
inline constexpr int kSimtBlockN = 32;
inline constexpr int kSimtWarps = 4;

}  // namespace polyhead::cuda
