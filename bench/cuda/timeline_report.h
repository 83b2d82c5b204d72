// cuda_fwd_bench --timeline: the phase timestamps of the warp-specialized kernel
// (src/cuda/fwd/timeline.h) summed up per case. Per CTA, in SM cycles: thread 0 past the CTA
// barrier (plain form), Q copies issued, Q landed (consumer warpgroup 0), the main loop (Q landed
// to the last P V) and per key tile, the epilogue, and the whole CTA (first mark to the later
// warpgroup's last); per SM, the gap from one CTA's end to the next CTA's start (launch, and what
// precedes thread 0's first instruction), and in the plain form the CTA's last warp's exit and the
// gap from it; each SM's span (first start to last end). Medians, with the share of the SMs' busy
// time that the main loops take, the share of a consumer warpgroup's main loop spent waiting for
// its K and V stages, and the producer's wait for free stages per item; and the phases of an
// iteration of the overlapped main loop per consumer warpgroup.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cuda/fwd/timeline.h"

namespace polyhead::bench {

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `words`: kTimelineFields per CTA as the kernel left them (zeros where it wrote nothing);
// `mhz`: the SM clock to express cycles in microseconds.
inline void print_timeline(const std::string& name, const std::vector<uint64_t>& words,
                           double mhz) {
  using namespace polyhead::cuda;
  struct Cta {
    uint64_t start, end, exit;  // exit: the last warp's (0 where not recorded)
  };
  std::map<uint64_t, std::vector<Cta>> by_sm;
  std::vector<double> barriers, q_issued, q_landed, loop, per_tile, epilogue, total, gaps;
  std::vector<double> exit_after_end, exit_gaps;  // plain form: the last warp's exit
  std::map<int, size_t> last_warp;                // how often each warp exited last
  std::vector<double> staging, storing;  // plain form: warpgroup 0's epilogue, split at kTlStaged0
  std::vector<double> own_rows, producer_ready;  // plain form: kTlOwnRows0, kTlProducerReady
  std::vector<double> resolved, maps_fetched;    // plain form: kTlResolved, kTlMapsFetched
  std::vector<double> kv_wait, empty_wait;       // per item; kv_wait over both consumer warpgroups
  // Per consumer warpgroup, per iteration of the overlapped loop (items of 2+ tiles): the
  // phases (timeline.h, TimelinePhase), then the rest (the loop's cycles less its K, V waits
  // and phases, over the iterations: the first tile, the last P V, the clock reads).
  std::vector<double> phase[2][kTlPhases + 1];
  double loop_sum = 0.0;
  size_t ctas = 0;
  for (size_t b = 0; b + kTimelineFields <= words.size(); b += kTimelineFields) {
    const uint64_t* t = words.data() + b;
    if (t[kTlSm] == 0 || t[kTlEnd0] == 0) continue;  // no item, or no marks
    // Two consumer warpgroups, or one (the 64-row tiles, tile_size.h: no marks of a second).
    const int consumers = t[kTlEnd1] != 0 ? 2 : 1;
    ++ctas;
    const uint64_t start = t[kTlStart], end = std::max(t[kTlEnd0], t[kTlEnd1]);
    // Signed: in the persistent kernel the producer issues an item's Q before its consumers
    // start it.
    auto since = [](uint64_t later, uint64_t earlier) { return double(int64_t(later - earlier)); };
    if (t[kTlBarriers] != 0) barriers.push_back(since(t[kTlBarriers], start));  // plain form
    q_issued.push_back(since(t[kTlQIssued], start));
    q_landed.push_back(since(t[kTlQLanded0], start));
    loop.push_back(since(t[kTlLoopEnd0], t[kTlQLanded0]));
    if (t[kTlTiles] > 0) per_tile.push_back(loop.back() / double(t[kTlTiles]));
    epilogue.push_back(since(t[kTlEnd0], t[kTlLoopEnd0]));
    total.push_back(since(end, start));
    kv_wait.push_back(double(t[kTlKvWait0]) / loop.back());
    if (consumers == 2) {
      kv_wait.push_back(double(t[kTlKvWait1]) / since(t[kTlLoopEnd1], t[kTlQLanded1]));
    }
    empty_wait.push_back(double(t[kTlEmptyWait]));
    if (t[kTlTiles] > 1) {
      const double iters = double(t[kTlTiles] - 1);
      for (int cw = 0; cw < consumers; ++cw) {
        double rest =
            since(t[kTlLoopEnd0 + 3 * cw], t[kTlQLanded0 + 3 * cw]) - double(t[kTlKvWait0 + cw]);
        for (int k = 0; k < kTlPhases; ++k) {
          const double v = double(t[kTlPhase0 + kTlPhases * cw + k]);
          phase[cw][k].push_back(v / iters);
          rest -= v;
        }
        phase[cw][kTlPhases].push_back(rest / iters);
      }
    }
    loop_sum += loop.back();
    // kTlExit: the clock shifted left, with the last warp's index in the low bits.
    const uint64_t exit = t[kTlExit] >> kTlExitWarpBits;
    if (exit != 0) {
      exit_after_end.push_back(since(exit, end));
      ++last_warp[t[kTlExit] & ((1u << kTlExitWarpBits) - 1)];
    }
    if (t[kTlStaged0] != 0) {
      staging.push_back(since(t[kTlStaged0], t[kTlLoopEnd0]));
      storing.push_back(since(t[kTlEnd0], t[kTlStaged0]));
      if (t[kTlOwnRows0] != 0) own_rows.push_back(since(t[kTlOwnRows0], t[kTlLoopEnd0]));
    }
    if (t[kTlProducerReady] != 0) {
      producer_ready.push_back(since(t[kTlProducerReady], start));
    }
    if (t[kTlResolved] != 0) resolved.push_back(since(t[kTlResolved], start));
    if (t[kTlMapsFetched] != 0) maps_fetched.push_back(since(t[kTlMapsFetched], start));
    by_sm[t[kTlSm]].push_back({start, end, exit});
  }
  if (ctas == 0) {
    std::printf("timeline %s: no marks (not the warp-specialized kernel?)\n", name.c_str());
    return;
  }
  double busy = 0.0;
  // Per SM, its span: first start to last end. Clocks of different SMs do not compare, but the
  // SMs start together, so a longest span well above the median is a tail.
  std::vector<double> spans;
  for (auto& [sm, list] : by_sm) {
    std::sort(list.begin(), list.end(),
              [](const Cta& a, const Cta& b) { return a.start < b.start; });
    busy += double(list.back().end - list.front().start);
    uint64_t last_end = list.front().end, last_exit = list.front().exit;
    for (size_t i = 1; i < list.size(); ++i) {
      if (list[i].start > last_end) gaps.push_back(double(list[i].start - last_end));
      if (last_exit != 0 && list[i].start > last_exit) {
        exit_gaps.push_back(double(list[i].start - last_exit));
      }
      last_end = std::max(last_end, list[i].end);
      last_exit = std::max(last_exit, list[i].exit);
    }
    spans.push_back(double(last_end - list.front().start));
  }
  const double longest = *std::max_element(spans.begin(), spans.end());
  auto us = [&](double cycles) { return cycles / mhz; };
  std::printf(
      "timeline %s: %zu CTAs on %zu SMs; median us at %.0f MHz (cycles): past the CTA barrier "
      "%.2f (%.0f), Q issued %.2f (%.0f), "
      "Q landed %.2f (%.0f), loop %.2f (%.0f) = %.3f (%.0f) per key tile, epilogue %.2f (%.0f), "
      "CTA %.2f (%.0f), gap between CTAs %.2f (%.0f); main loops %.0f%% of the SMs' span; "
      "waits: consumers for K, V %.0f%% of their loop, producer for a free stage %.2f (%.0f)\n",
      name.c_str(), ctas, by_sm.size(), mhz, us(median_of(barriers)), median_of(barriers),
      us(median_of(q_issued)), median_of(q_issued), us(median_of(q_landed)), median_of(q_landed),
      us(median_of(loop)), median_of(loop), us(median_of(per_tile)), median_of(per_tile),
      us(median_of(epilogue)), median_of(epilogue), us(median_of(total)), median_of(total),
      us(median_of(gaps)), median_of(gaps), busy > 0 ? 100.0 * loop_sum / busy : 0.0,
      100.0 * median_of(kv_wait), us(median_of(empty_wait)), median_of(empty_wait));
  std::printf("  SM spans: median %.2f (%.0f), longest %.2f (%.0f)\n", us(median_of(spans)),
              median_of(spans), us(longest), longest);
  if (!staging.empty()) {
    std::printf(
        "  epilogue of warpgroup 0: normalize and stage O %.2f (%.0f), then its stores "
        "%.2f (%.0f)\n",
        us(median_of(staging)), median_of(staging), us(median_of(storing)), median_of(storing));
    if (!own_rows.empty()) {
      std::printf(
          "    its marking thread's own shared stores issued at %.2f (%.0f); the fence and the "
          "warpgroup barrier take the rest of the staging\n",
          us(median_of(own_rows)), median_of(own_rows));
    }
  }
  if (!producer_ready.empty()) {
    std::printf("  the producer thread past its setmaxnreg at %.2f (%.0f) after the start\n",
                us(median_of(producer_ready)), median_of(producer_ready));
  }
  if (!resolved.empty() && !maps_fetched.empty()) {
    std::printf(
        "  the producer thread has resolved its item at %.2f (%.0f), issued the tensor-map "
        "prefetches at %.2f (%.0f)\n",
        us(median_of(resolved)), median_of(resolved), us(median_of(maps_fetched)),
        median_of(maps_fetched));
  }
  if (!exit_after_end.empty()) {
    std::printf(
        "  the last warp exits %.2f (%.0f) after the end marks; from its exit to the SM's "
        "next CTA %.2f (%.0f)\n",
        us(median_of(exit_after_end)), median_of(exit_after_end), us(median_of(exit_gaps)),
        median_of(exit_gaps));
    std::printf("  the last warp to exit (warp: share of CTAs):");
    for (const auto& [warp, n] : last_warp) {
      std::printf(" %d: %.0f%%", warp, 100.0 * double(n) / double(exit_after_end.size()));
    }
    std::printf("\n");
  }
  if (phase[0][0].empty()) return;
  const bool two = !phase[1][0].empty();
  std::printf("  per iteration, cycles (warpgroup %s):", two ? "0 / 1" : "0");
  static const char* kNames[kTlPhases + 1] = {"top",     "turn",     "issue", "S wait", "mask",
                                              "softmax", "P V wait", "post",  "rest"};
  for (int k = 0; k <= kTlPhases; ++k) {
    std::printf("%s %s %.0f", k == 0 ? "" : ",", kNames[k], median_of(phase[0][k]));
    if (two) std::printf(" / %.0f", median_of(phase[1][k]));
  }
  std::printf("\n");
}

}  // namespace polyhead::bench
