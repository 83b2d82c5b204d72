// Phase timestamps of the warp-specialized forward kernel (fwd_ws/kernel.cuh), per CTA, in
// builds configured with -DPOLYHEAD_CUDA_TIMELINE=ON (a development tool: cuda_fwd_bench
// --timeline, scripts/gpu-timeline). Each mark is clock64() of the CTA's SM, so durations
// within a CTA and the gaps between the CTAs one SM runs in turn are exact in SM cycles.
// CTA b (its linear block index) owns the kTimelineFields words at timeline + b *
// kTimelineFields; a CTA that wrote nothing leaves kTlSm at 0. The persistent form
// (fwd_ws/persistent.cuh) writes one record per work item instead, its "start" being when
// consumer warpgroup 0 takes the item up (so the gaps are between items of one CTA). Without
// the option the kernels and FwdParams have no trace of it.
#pragma once

namespace polyhead::cuda {

// The phases of a main-loop iteration that kTlPhase0 on count (see there).
enum TimelinePhase : int {
  kPhTop = 0,  // the tile's entry and block-map bits (BitsAhead), before the K, V waits
  kPhTurn,     // the ping-pong barrier
  kPhIssue,    // issuing S = Q K^T and the previous tile's P V
  kPhSWait,
  kPhMask,
  kPhSoftmax,
  kPhPvWait,
  kPhPost,  // P V settled, the stage released, O rescaled where the maximum moved, P packed
  kTlPhases
};

enum TimelineField : int {
  kTlSm = 0,    // %smid + 1
  kTlStart,     // thread 0's first instruction
  kTlBarriers,  // thread 0 past the mbarrier init and the CTA barrier
  kTlQIssued,   // the producer has issued Q's copies
  kTlKvIssued,  // the producer has issued every K, V copy of the item
  kTlQLanded0,  // consumer warpgroup 0: Q has landed (its q_full wait returned)
  kTlLoopEnd0,  // consumer warpgroup 0: its last P V has completed (and any recompute)
  kTlEnd0,      // consumer warpgroup 0: its O rows and LSE are stored
  kTlQLanded1,  // the same three for consumer warpgroup 1
  kTlLoopEnd1,
  kTlEnd1,
  // The last warp's exit: the latest clock of any warp's lane 0 before it returns, shifted
  // left by kTlExitWarpBits, with that warp's index in the low bits.
  kTlExit,
  // Consumer warpgroup 0, then 1 (plain form): its rows of O normalized and staged in shared
  // memory, just before the stores (fwd_ws/epilogue.cuh); kTlEnd0 is after them.
  kTlStaged0,
  kTlStaged1,
  // Plain form: warpgroup 0's marking thread has issued its own shared-memory stores of O, before
  // the async-proxy fence and the warpgroup barrier that end the staging (kTlStaged0).
  kTlOwnRows0,
  kTlProducerReady,  // plain form: the producer thread past its setmaxnreg, before Q's copies
  kTlResolved,       // plain form: the producer thread has resolved its item (resolve_work)
  kTlMapsFetched,    // plain form: ... and issued the three tensor-map prefetches
  kTlTiles,          // the item's key tiles (a count, not a time)
  // Counts of cycles spent in the item's mbarrier waits on the K, V ring (fwd_ws/consumer.cuh,
  // ring_wait): by consumer warpgroup 0 and 1 for their K and V stages to fill, and by the
  // producer for a stage to be released. Starved consumers show in the first two, consumers
  // that the producer cannot keep up with in neither, a full ring in the third.
  kTlKvWait0,
  kTlKvWait1,
  kTlEmptyWait,
  // Counts of cycles in the phases of the overlapped main loop's iterations (the second tile
  // on; fwd_ws/consumer.cuh, consume_overlapped), by consumer warpgroup 0 and then 1
  // (TimelinePhase; the K, V waits are the counts above). ptxas moves arithmetic across the
  // clock reads, so neighbouring phases trade some work: the SASS puts the exponentials of
  // "mask" and "softmax" in the second.
  kTlPhase0,
  kTimelineFields = kTlPhase0 + 2 * kTlPhases
};

// The low bits of kTlExit that hold the index of the warp that exited last (up to 16 warps).
inline constexpr int kTlExitWarpBits = 4;

// The wait and phase counts above accumulate in shared memory after the ring's barriers (one
// 8-byte word each, owned by one thread), in timeline builds only.
inline constexpr int kTimelineTallies = 3 + 2 * kTlPhases;
// The tally (and field kTlKvWait0 + it) of consumer warpgroup cw's phase k.
constexpr int phase_tally(int cw, int k) {
  return 3 + kTlPhases * cw + k;
}
#if POLYHEAD_CUDA_TIMELINE
inline constexpr unsigned kTimelineTallyBytes = 8 * kTimelineTallies;
#else
inline constexpr unsigned kTimelineTallyBytes = 0;
#endif

}  // namespace polyhead::cuda
