#include "cuda/fwd/block_map_cache.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "cuda/cuda_check.h"
#include "cuda/fwd/patch_map.h"
#include "polyhead/error.h"

namespace polyhead::cuda {
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

// The bits of a user block mask when they are one contiguous u8 block on the host.
const TensorView* content_of(const MaskSpec& m) {
  const auto* b = m.get_if<BlockMask>();
  if (b == nullptr) return nullptr;
  const TensorView& t = b->bits.view;
  if (t.rank != 3 || t.dtype != DType::u8 || t.data == nullptr ||
      t.device.type != DeviceType::cpu) {
    return nullptr;  // the rule's checks (build_block_map) say what is wrong, if anything
  }
  const bool packed = t.stride[2] == 1 && (t.shape[1] <= 1 || t.stride[1] == t.shape[2]) &&
                      (t.shape[0] <= 1 || t.stride[0] == t.shape[1] * t.shape[2]);
  return packed ? &t : nullptr;
}

// 64-bit digest of n bytes: four independent multiply-xorshift lanes over 8-byte words (about
// 0.1 ms per MiB here), then the tail. It picks the entry; the bytes themselves decide.
uint64_t digest(const unsigned char* d, size_t n) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t h[4] = {n, 1, 2, 3};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, d + i + 8 * size_t(l), 8);
      h[l] = (h[l] ^ w) * kMul;
      h[l] ^= h[l] >> 31;
    }
  }
  uint64_t r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
  for (; i < n; ++i) r = (r ^ d[i]) * kMul;
  return r ^ (r >> 29);
}

struct Entry {
  int gpu = 0;  // the device of the arrays
  void* device = nullptr;
  cudaEvent_t ready = nullptr;  // the upload
  FwdBlockMap map;
  double work = 0;
  size_t bytes = 0;  // device arrays (and, by content, the host copy)
  // By content only:
  std::vector<unsigned char> content;  // the mask's bytes, compared on every hit
  cudaEvent_t used = nullptr;          // recorded after the launches of the last call that held it
  int holds = 0;                       // lookups whose launches are not all made yet
  bool stuck = false;                  // a use could not be recorded: never evicted
  uint64_t last = 0;                   // lookup tick, for least recently used
  bool by_content() const { return used != nullptr; }
};

struct Cache {
  std::mutex mutex;
  std::map<std::string, Entry> entries;  // parameter entries are never evicted
  size_t param_bytes = 0;
  static constexpr size_t kParamLimit = size_t(256) << 20;
  size_t content_bytes = 0, content_budget = size_t(256) << 20;
  uint64_t tick = 0;
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

// The host map's arrays in one buffer, and where each starts.
struct Packed {
  std::vector<unsigned char> buf;
  size_t rs = 0, rp = 0, tl = 0, bt = 0;
};
Packed pack(const HostBlockMap& host) {
  Packed k;
  k.rs = put(k.buf, host.row_start), k.rp = put(k.buf, host.row_ptr);
  k.tl = put(k.buf, host.tiles), k.bt = put(k.buf, host.bits);
  return k;
}

// Uploads `k` on `stream` into e's device arrays.
void upload(Entry& e, const Packed& k, cudaStream_t stream) {
  POLYHEAD_CUDA_CHECK(cudaMallocAsync(&e.device, k.buf.size(), stream));
  POLYHEAD_CUDA_CHECK(
      cudaMemcpyAsync(e.device, k.buf.data(), k.buf.size(), cudaMemcpyHostToDevice, stream));
  POLYHEAD_CUDA_CHECK(cudaEventCreateWithFlags(&e.ready, cudaEventDisableTiming));
  POLYHEAD_CUDA_CHECK(cudaEventRecord(e.ready, stream));
  const auto* base = static_cast<const char*>(e.device);
  e.map.row_start = reinterpret_cast<const int32_t*>(base + k.rs);
  e.map.row_ptr = reinterpret_cast<const int32_t*>(base + k.rp);
  e.map.tiles = reinterpret_cast<const int32_t*>(base + k.tl);
  e.map.bits = reinterpret_cast<const uint32_t*>(base + k.bt);
}

// Whether no kernel can still read a by-content entry (under the cache's lock).
bool idle(const Entry& e) {
  return e.holds == 0 && !e.stuck && cudaEventQuery(e.ready) == cudaSuccess &&
         cudaEventQuery(e.used) == cudaSuccess;
}

// `stream`: one of e's device, or nullptr for that device's legacy stream.
void drop(Cache& c, std::map<std::string, Entry>::iterator it, cudaStream_t stream) {
  Entry& e = it->second;
  // Idle: the stream-ordered free cannot overtake a kernel that reads the arrays.
  (void)cudaFreeAsync(e.device, stream);
  (void)cudaEventDestroy(e.ready);
  (void)cudaEventDestroy(e.used);
  c.content_bytes -= e.bytes;
  c.entries.erase(it);
}

// Evicts idle by-content entries of device `gpu` (the current one; `stream` is one of its
// streams or nullptr), least recently used first, until `need` more bytes fit the budget;
// false if they cannot.
bool make_room(Cache& c, size_t need, int gpu, cudaStream_t stream) {
  while (c.content_bytes + need > c.content_budget) {
    auto victim = c.entries.end();
    for (auto it = c.entries.begin(); it != c.entries.end(); ++it) {
      if (!it->second.by_content() || it->second.gpu != gpu || !idle(it->second)) continue;
      if (victim == c.entries.end() || it->second.last < victim->second.last) victim = it;
    }
    if (victim == c.entries.end()) return false;
    drop(c, victim, stream);
  }
  return true;
}

std::shared_ptr<void> hold(Entry& e, cudaStream_t stream) {
  ++e.holds;
  Entry* held = &e;  // std::map nodes stay put; an entry with holds is never erased
  return std::shared_ptr<void>(nullptr, [held, stream](void*) {
    const std::lock_guard<std::mutex> lock(cache().mutex);
    if (cudaEventRecord(held->used, stream) != cudaSuccess) held->stuck = true;
    --held->holds;
  });
}

}  // namespace

std::optional<CachedBlockMap> cached_block_map(const AttentionProblem& p, const ProblemShape& s,
                                               TileShape tile, int device, void* stream_ptr,
                                               const TokenOrder* order) {
  const TensorView* bits = content_of(p.mask);
  if (bits == nullptr && !parameters_only(p.mask)) return std::nullopt;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const std::vector<detail::Sequence> seqs = detail::sequences(p, s);
  std::string key = std::to_string(device) + "|" + std::to_string(s.heads_q) + "/" +
                    std::to_string(s.heads_kv) + "|" + std::to_string(tile.m) + "x" +
                    std::to_string(tile.n) + "|";
  for (const detail::Sequence& q : seqs) {
    key += std::to_string(q.seqlen_q) + ":" + std::to_string(q.seqlen_k) + ",";
  }
  if (order != nullptr) {
    key += "|patch:" + std::to_string(order->shift[0]) + "," + std::to_string(order->shift[1]) +
           "," + std::to_string(order->shift[2]) + "/" + std::to_string(order->sub_bits) + "," +
           std::to_string(order->sub_dim);
  }
  const auto* bytes = bits != nullptr ? static_cast<const unsigned char*>(bits->data) : nullptr;
  const size_t nbytes = bits != nullptr ? size_t(bits->numel()) : 0;
  if (bits != nullptr) {
    const auto* b = p.mask.get_if<BlockMask>();
    key += "|blocks:" + std::to_string(bits->shape[0]) + "x" + std::to_string(bits->shape[1]) +
           "x" + std::to_string(bits->shape[2]) + ",bq=" + std::to_string(b->block_q) +
           ",bk=" + std::to_string(b->block_k) + ",#" + std::to_string(digest(bytes, nbytes));
  } else {
    key += "|" + p.mask.to_string();
  }

  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.entries.find(key);
  if (it != c.entries.end() && bits != nullptr &&
      (it->second.content.size() != nbytes ||
       std::memcmp(it->second.content.data(), bytes, nbytes) != 0)) {
    // Same digest, other bytes: replace the entry once no kernel reads it.
    if (!idle(it->second)) return std::nullopt;
    drop(c, it, stream);
    it = c.entries.end();
  }
  // A mask larger than the whole budget cannot be kept: no build here, the caller's is enough.
  if (it == c.entries.end() && nbytes > c.content_budget) return std::nullopt;
  if (it == c.entries.end()) {
    const HostBlockMap host =
        order ? build_patch_block_map(p, s, *order, tile) : build_block_map(p, s, seqs, tile);
    const Packed k = pack(host);
    Entry e;
    e.bytes = k.buf.size() + nbytes;
    if (bits != nullptr) {
      if (e.bytes > c.content_budget || !make_room(c, e.bytes, device, stream)) {
        return std::nullopt;
      }
    } else if (c.param_bytes + e.bytes > Cache::kParamLimit) {
      return std::nullopt;
    }
    e.work = map_work(host, seqs, s.heads_q, tile);
    e.gpu = device;
    upload(e, k, stream);
    if (bits != nullptr) {
      e.content.assign(bytes, bytes + nbytes);
      POLYHEAD_CUDA_CHECK(cudaEventCreateWithFlags(&e.used, cudaEventDisableTiming));
      c.content_bytes += e.bytes;
    } else {
      c.param_bytes += e.bytes;
    }
    it = c.entries.emplace(std::move(key), std::move(e)).first;
  } else {
    POLYHEAD_CUDA_CHECK(cudaStreamWaitEvent(stream, it->second.ready, 0));
  }
  Entry& e = it->second;
  CachedBlockMap out{e.map, e.work, bits != nullptr, nullptr};
  if (bits != nullptr) {
    e.last = ++c.tick;
    out.hold = hold(e, stream);
  }
  return out;
}

BlockMapCacheStats block_map_cache_stats() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  BlockMapCacheStats st;
  for (const auto& [key, e] : c.entries) st.by_content_entries += e.by_content() ? 1 : 0;
  st.by_content_bytes = c.content_bytes;
  return st;
}

void set_block_map_content_budget(size_t bytes) {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  c.content_budget = bytes;
  // Idle entries past the budget go now, device by device.
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess) return;
  std::vector<int> gpus;
  for (const auto& [key, e] : c.entries) {
    if (e.by_content() && std::find(gpus.begin(), gpus.end(), e.gpu) == gpus.end()) {
      gpus.push_back(e.gpu);
    }
  }
  for (int gpu : gpus) {
    if (cudaSetDevice(gpu) == cudaSuccess) (void)make_room(c, 0, gpu, nullptr);
  }
  (void)cudaSetDevice(current);
}

}  // namespace polyhead::cuda
