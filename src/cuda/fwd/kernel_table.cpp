// The forward kernel table (kernel_table.h): one entry per generated instance of fwd_table.inc.
#include "cuda/fwd/kernel_table.h"

#include <algorithm>

#include "cuda/fwd/dispatch.h"
#include "cuda/fwd/launch.h"
#include "cuda/fwd/tile_size.h"
#include "fwd_table.inc"

namespace polyhead::cuda {
namespace {

template <typename Tile>
constexpr int auto_min_keys() {
  if constexpr (requires { Tile::kAutoMinKeys; }) {
    return Tile::kAutoMinKeys;
  } else {
    return 0;
  }
}

// The entry of one instance: its tile's shape and auto_min_keys, its launch function, family.
template <typename Tile>
TcConfig tc_entry(DType dtype, int dqk, int dv, LaunchFn launch, TcKind kind) {
  return TcConfig{dtype,        dqk,    dv,   {Tile::kBlockM, Tile::kBlockN},
                  Tile::kWarps, launch, kind, auto_min_keys<Tile>()};
}
#define POLYHEAD_TC_ENTRY(Tile, launch, kind, dt, dqk, dv) \
  tc_entry<Tile<dqk, dv>>(DType::dt, dqk, dv, &launch<DType::dt, dqk, dv>, TcKind::kind),
#define POLYHEAD_MMA_ENTRY(dt, dqk, dv) POLYHEAD_TC_ENTRY(FwdTile, launch_fwd, mma, dt, dqk, dv)
#define POLYHEAD_SM90_ENTRY(dt, dqk, dv) \
  POLYHEAD_TC_ENTRY(FwdSm90Tile, launch_fwd_sm90, wgmma, dt, dqk, dv)
#define POLYHEAD_WS_ENTRY(dt, dqk, dv) POLYHEAD_TC_ENTRY(FwdWsTile, launch_fwd_ws, ws, dt, dqk, dv)

// The neighborhood tiles of a ws pair, where tile_size.h has them.
template <DType kDtype, int Dqk, int Dv>
void add_ws_na(std::vector<TcConfig>& table) {
  if constexpr (kHasWsNaTile<Dqk, Dv>) {
    table.push_back(tc_entry<FwdWsNaTile<Dqk, Dv>>(
        kDtype, Dqk, Dv, &launch_fwd_ws_na<kDtype, Dqk, Dv>, TcKind::ws_na));
  }
}
#define POLYHEAD_WS_NA_ENTRY(dt, dqk, dv) add_ws_na<DType::dt, dqk, dv>(all);
}  // namespace

const std::vector<TcConfig>& tc_table() {
  static const std::vector<TcConfig> table = [] {
    std::vector<TcConfig> all = {POLYHEAD_FWD_COMPILED_TC(POLYHEAD_MMA_ENTRY)
                                     POLYHEAD_FWD_COMPILED_SM90(POLYHEAD_SM90_ENTRY)
                                         POLYHEAD_FWD_COMPILED_WS(POLYHEAD_WS_ENTRY)};
    POLYHEAD_FWD_COMPILED_WS(POLYHEAD_WS_NA_ENTRY)
    return all;
  }();
  return table;
}
#undef POLYHEAD_WS_NA_ENTRY
#undef POLYHEAD_WS_ENTRY
#undef POLYHEAD_SM90_ENTRY
#undef POLYHEAD_MMA_ENTRY
#undef POLYHEAD_TC_ENTRY

#define POLYHEAD_PAIR_ENTRY(dqk, dv) std::pair<int, int>{dqk, dv},
const std::vector<std::pair<int, int>>& compiled_pairs() {
  static const std::vector<std::pair<int, int>> pairs = {
      POLYHEAD_FWD_COMPILED_PAIRS(POLYHEAD_PAIR_ENTRY)};
  return pairs;
}
#undef POLYHEAD_PAIR_ENTRY

const TcConfig* find_tc(DType dtype, int64_t dqk, int64_t dv, TcKind kind) {
  for (const TcConfig& c : tc_table()) {
    if (c.dtype == dtype && c.dqk == dqk && c.dv == dv && c.kind == kind) return &c;
  }
  return nullptr;
}

bool simt_pair(int64_t dqk, int64_t dv) {
  if (!POLYHEAD_FWD_SIMT_F32) return false;
  for (auto [a, b] : compiled_pairs()) {
    if (a == dqk && b == dv) return true;
  }
  return false;
}

std::string head_dims(int64_t dqk, int64_t dv) {
  if (dqk == dv) return std::to_string(dqk);
  std::string out = "(";
  out += std::to_string(dqk);
  out += ", ";
  out += std::to_string(dv);
  out += ')';
  return out;
}

std::string ws_configurations() {
  std::vector<std::string> dims, dtypes;
  for (const TcConfig& c : tc_table()) {
    if (c.kind != TcKind::ws) continue;
    const std::string d = head_dims(c.dqk, c.dv), t(dtype_name(c.dtype));
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) dims.push_back(d);
    if (std::find(dtypes.begin(), dtypes.end(), t) == dtypes.end()) dtypes.push_back(t);
  }
  if (dims.empty()) return "nothing in this build";
  std::string out;
  for (size_t i = 0; i < dtypes.size(); ++i) out += (i == 0 ? "" : " and ") + dtypes[i];
  out += " with head dims ";
  for (size_t i = 0; i < dims.size(); ++i) out += (i == 0 ? "" : ", ") + dims[i];
  return out;
}

std::vector<std::string> fwd_configurations() {
  std::vector<std::string> out;
  for (const TcConfig& c : tc_table()) {
    out.push_back(std::string(dtype_name(c.dtype)) + " " + head_dims(c.dqk, c.dv) + ": tile " +
                  std::to_string(c.tile.m) + "x" + std::to_string(c.tile.n) + ", " +
                  std::to_string(c.warps) + " warps, " +
                  (c.kind == TcKind::ws      ? "warp-specialized TMA (sm_90a, preferred on cc 9.0)"
                   : c.kind == TcKind::ws_na ? "warp-specialized TMA, neighborhood tiles (sm_90a, "
                                               "rank-2 neighborhoods in patch order)"
                   : c.kind == TcKind::wgmma ? "wgmma (sm_90a, preferred on cc 9.0)"
                                             : "mma.sync"));
  }
  if (POLYHEAD_FWD_SIMT_F32) {
    std::string dims;
    for (auto [a, b] : compiled_pairs()) dims += (dims.empty() ? "" : ", ") + head_dims(a, b);
    out.push_back("f32 " + dims + ": tile 32x32, 4 warps, fp32 SIMT");
  }
  return out;
}

}  // namespace polyhead::cuda
