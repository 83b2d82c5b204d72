#include "cuda/fwd/block_map_device.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <cuda_runtime_api.h>

#include "core/mask_rule.h"
#include "core/pack_bits.h"
#include "cuda/cuda_check.h"
#include "cuda/fwd/patch_map.h"
#include "polyhead/error.h"

namespace polyhead::cuda {
namespace {

int32_t checked_i32(size_t x, const char* what) {
  POLYHEAD_CHECK(x <= size_t(std::numeric_limits<int32_t>::max()), "cuda backend: the block map ",
                 "has ", x, " ", what, ", more than int32 indexes");
  return int32_t(x);
}

// Appends the rows of every row group of one sequence geometry; returns the first row of
// each query head.
std::vector<int32_t> append_geometry(const AttentionProblem& p, const ProblemShape& s,
                                     const MaskGeometry& g, TileShape tile, HostBlockMap& out) {
  const BlockMap map = BlockMap::compile(p.mask, g, tile);
  const auto rule = detail::make_rule(p.mask, g);
  const int64_t words = tile.n / 32;
  const int64_t q_tiles = map.q_tiles();
  std::vector<int32_t> head_row(size_t(s.heads_q));
  std::map<int64_t, int32_t> group_row;  // row group -> its first row
  std::vector<KeyTile> row;
  std::vector<uint8_t> allowed(size_t(tile.n));
  for (int64_t h = 0; h < s.heads_q; ++h) {
    const int64_t group = rule->row_group(h);
    if (auto it = group_row.find(group); it != group_row.end()) {
      head_row[size_t(h)] = it->second;
      continue;
    }
    const int32_t first = checked_i32(out.row_ptr.size() - 1, "rows");
    group_row.emplace(group, first);
    head_row[size_t(h)] = first;
    for (int64_t qt = 0; qt < q_tiles; ++qt) {
      map.row(h, qt, row);
      for (const KeyTile& t : row) {
        int32_t slot = -1;
        if (!t.full) {
          slot = checked_i32(out.bits.size() / size_t(tile.m * words), "partial tiles");
          const int64_t k0 = t.index * tile.n, count = std::min(tile.n, g.seqlen_k - k0);
          for (int64_t r = 0; r < tile.m; ++r) {
            const int64_t i = qt * tile.m + r;
            uint32_t w[4] = {};
            if (i < g.seqlen_q) {
              map.allowed_row(h, i, k0, count, allowed.data());
              detail::pack_bits(allowed.data(), count, w);
            }
            out.bits.insert(out.bits.end(), w, w + words);
          }
        }
        out.tiles.push_back(checked_i32(size_t(t.index), "key tiles"));
        out.tiles.push_back(slot);
      }
      out.row_ptr.push_back(checked_i32(out.tiles.size() / 2, "entries"));
    }
  }
  return head_row;
}

}  // namespace

HostBlockMap build_block_map(const AttentionProblem& p, const ProblemShape& s,
                             const std::vector<detail::Sequence>& seqs, TileShape tile) {
  POLYHEAD_CHECK(tile.n % 32 == 0 && tile.n <= 128, "cuda backend: block-map tile width ", tile.n,
                 " must be a multiple of 32, at most 128");
  HostBlockMap out;
  out.row_ptr.push_back(0);
  out.row_start.reserve(seqs.size() * size_t(s.heads_q));
  std::map<std::pair<int64_t, int64_t>, std::vector<int32_t>> by_geometry;
  for (const detail::Sequence& seq : seqs) {
    const std::pair<int64_t, int64_t> key{seq.seqlen_q, seq.seqlen_k};
    auto it = by_geometry.find(key);
    if (it == by_geometry.end()) {
      const MaskGeometry g{seq.seqlen_q, seq.seqlen_k, s.heads_q, s.heads_kv};
      it = by_geometry.emplace(key, append_geometry(p, s, g, tile, out)).first;
    }
    out.row_start.insert(out.row_start.end(), it->second.begin(), it->second.end());
  }
  return out;
}

namespace {

bool parameters_only(const MaskSpec& m) {
  if (m.is_none() || m.get_if<WindowMask>() || m.get_if<NeighborhoodMask>() ||
      m.get_if<StridedMask>() || m.get_if<SliceMask>()) {
    return true;
  }
  if (const auto* ph = m.get_if<PerHeadMask>()) {
    return std::all_of(ph->heads.begin(), ph->heads.end(), parameters_only);
  }
  return false;
}

struct CacheEntry {
  void* device = nullptr;
  cudaEvent_t ready = nullptr;
  FwdBlockMap map;
  double work = 0;
};

double map_work(const HostBlockMap& m, const std::vector<detail::Sequence>& seqs, int64_t heads_q,
                TileShape tile) {
  // Per CSR row: full + 1.25 partial entries, as a prefix sum over rows.
  std::vector<double> prefix(m.row_ptr.size(), 0.0);
  for (size_t r = 0; r + 1 < m.row_ptr.size(); ++r) {
    double w = 0;
    for (int32_t e = m.row_ptr[r]; e < m.row_ptr[r + 1]; ++e) {
      w += m.tiles[size_t(2 * e + 1)] >= 0 ? 1.25 : 1.0;
    }
    prefix[r + 1] = prefix[r] + w;
  }
  double work = 0;
  for (size_t b = 0; b < seqs.size(); ++b) {
    const int64_t q_tiles = (seqs[b].seqlen_q + tile.m - 1) / tile.m;
    for (int64_t h = 0; h < heads_q; ++h) {
      const size_t row0 = size_t(m.row_start[b * size_t(heads_q) + size_t(h)]);
      work += prefix[row0 + size_t(q_tiles)] - prefix[row0];
    }
  }
  return work * double(tile.m) * double(tile.n);
}

struct Cache {
  std::mutex mutex;
  std::map<std::string, CacheEntry> entries;  // never evicted: kernels may still read them
  size_t bytes = 0;
  static constexpr size_t kLimit = size_t(256) << 20;
};

Cache& cache() {
  static Cache* c = new Cache;  // leaked on purpose: device memory outlives static destructors
  return *c;
}

template <typename T>
size_t put(std::vector<unsigned char>& buf, const std::vector<T>& v) {
  const size_t off = (buf.size() + 15) / 16 * 16;
  buf.resize(off + v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(buf.data() + off, v.data(), v.size() * sizeof(T));
  return off;
}

}  // namespace

std::optional<CachedBlockMap> cached_block_map(const AttentionProblem& p, const ProblemShape& s,
                                               TileShape tile, int device, void* stream_ptr,
                                               const TokenOrder* order) {
  if (!parameters_only(p.mask)) return std::nullopt;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const std::vector<detail::Sequence> seqs = detail::sequences(p, s);
  std::string key = std::to_string(device) + "|" + p.mask.to_string() + "|" +
                    std::to_string(s.heads_q) + "/" + std::to_string(s.heads_kv) + "|" +
                    std::to_string(tile.m) + "x" + std::to_string(tile.n) + "|";
  for (const detail::Sequence& q : seqs) {
    key += std::to_string(q.seqlen_q) + ":" + std::to_string(q.seqlen_k) + ",";
  }
  if (order != nullptr) {
    key += "|patch:" + std::to_string(order->shift[0]) + "," + std::to_string(order->shift[1]) +
           "," + std::to_string(order->shift[2]) + "/" + std::to_string(order->sub_bits) + "," +
           std::to_string(order->sub_dim);
  }
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.entries.find(key);
  if (it == c.entries.end()) {
    const HostBlockMap host =
        order ? build_patch_block_map(p, s, *order, tile) : build_block_map(p, s, seqs, tile);
    std::vector<unsigned char> buf;
    const size_t rs = put(buf, host.row_start), rp = put(buf, host.row_ptr),
                 tl = put(buf, host.tiles), bt = put(buf, host.bits);
    if (c.bytes + buf.size() > Cache::kLimit) return std::nullopt;
    CacheEntry e;
    e.work = map_work(host, seqs, s.heads_q, tile);
    POLYHEAD_CUDA_CHECK(cudaMallocAsync(&e.device, buf.size(), stream));
    POLYHEAD_CUDA_CHECK(
        cudaMemcpyAsync(e.device, buf.data(), buf.size(), cudaMemcpyHostToDevice, stream));
    POLYHEAD_CUDA_CHECK(cudaEventCreateWithFlags(&e.ready, cudaEventDisableTiming));
    POLYHEAD_CUDA_CHECK(cudaEventRecord(e.ready, stream));
    const auto* base = static_cast<const char*>(e.device);
    e.map.row_start = reinterpret_cast<const int32_t*>(base + rs);
    e.map.row_ptr = reinterpret_cast<const int32_t*>(base + rp);
    e.map.tiles = reinterpret_cast<const int32_t*>(base + tl);
    e.map.bits = reinterpret_cast<const uint32_t*>(base + bt);
    c.bytes += buf.size();
    it = c.entries.emplace(std::move(key), e).first;
  } else {
    POLYHEAD_CUDA_CHECK(cudaStreamWaitEvent(stream, it->second.ready, 0));
  }
  return CachedBlockMap{it->second.map, it->second.work};
}

}  // namespace polyhead::cuda
