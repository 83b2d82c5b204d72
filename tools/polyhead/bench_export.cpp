// `polyhead bench --export DIR`: the grid's cases for bench/anchors/, so that the peers run the
// exact masks polyhead runs. DIR/cases.json ("polyhead-export/1", bench/grids/README.md) lists
// each case with its sizes, FLOPs, pattern facts and a mask description the peers can build
// from; beside it, per case, .npy files: documents (int64 boundaries as int32), cu_seqlens,
// slices (int32 [n, 5], the grammar's file form), block-mask bits (u8 [H or 1, nq, nk]) and the
// block map at FlexAttention's 128 x 128 tiles (u8 [G, Qt, Kt]: 0 skipped, 1 partial, 2 full;
// head h uses group head_group[h]).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <variant>

#include "args.h"
#include "bench.h"
#include "json.h"
#include "polyhead/block_map.h"
#include "polyhead/npy.h"

namespace polyhead::cli {
namespace {

constexpr int64_t kFlexTile = 128;
constexpr int64_t kMaxMapBytes = int64_t(512) << 20;  // larger block maps are not exported

std::string ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

void save_i32(const std::string& path, const std::vector<int64_t>& values,
              std::vector<int64_t> shape) {
  HostTensor t(DType::i32, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i) t.set(int64_t(i), double(values[i]));
  save_npy(path, t.view());
}

std::string window_json(const WindowMask& w) {
  return "{\"kind\": \"window\", \"left\": " + std::to_string(w.left) +
         ", \"right\": " + std::to_string(w.right) + ", \"sink\": " + std::to_string(w.sink) +
         ", \"top_left\": " + (w.align == Alignment::top_left ? "true" : "false") + "}";
}

// The peers' description of a mask, writing the .npy files it names into `dir`.
std::string mask_json(const MaskSpec& m, const CaseSpec& c, const std::string& dir,
                      const std::string& stem) {
  if (m.is_dynamic()) {
    return "{\"kind\": \"dynamic\", \"spec\": " + json_quote(c.mask) + "}";
  }
  if (c.varlen()) {
    save_i32(dir + "/" + stem + "-cu_seqlens.npy", c.documents, {int64_t(c.documents.size())});
    return "{\"kind\": \"varlen\", \"causal\": " + std::string(m.is_none() ? "false" : "true") +
           ", \"cu_seqlens\": " + json_quote(stem + "-cu_seqlens.npy") + "}";
  }
  if (m.is_none()) return "{\"kind\": \"none\"}";
  if (const auto* w = m.get_if<WindowMask>()) return window_json(*w);
  if (const auto* s = m.get_if<SliceMask>()) {
    std::vector<int64_t> rows;
    for (const AttnSlice& a : s->slices) {
      rows.insert(rows.end(), {a.q_begin, a.q_end, a.k_begin, a.k_end, int64_t(a.type)});
    }
    save_i32(dir + "/" + stem + "-slices.npy", rows, {int64_t(s->slices.size()), 5});
    return "{\"kind\": \"slices\", \"slices\": " + json_quote(stem + "-slices.npy") + "}";
  }
  if (const auto* b = m.get_if<BlockMask>()) {
    save_npy(dir + "/" + stem + "-blocks.npy", b->bits.view);
    return "{\"kind\": \"blocks\", \"bits\": " + json_quote(stem + "-blocks.npy") +
           ", \"block_q\": " + std::to_string(b->block_q) +
           ", \"block_k\": " + std::to_string(b->block_k) + "}";
  }
  if (const auto* n = m.get_if<NeighborhoodMask>()) {
    const auto dims = [&](const auto& a) {
      return ints(std::vector<int64_t>(a.begin(), a.begin() + n->rank));
    };
    std::vector<int64_t> causal;
    for (int d = 0; d < n->rank; ++d) causal.push_back(n->causal[size_t(d)] ? 1 : 0);
    return "{\"kind\": \"na\", \"rank\": " + std::to_string(n->rank) +
           ", \"grid\": " + dims(n->grid) + ", \"kernel\": " + dims(n->kernel) +
           ", \"dilation\": " + dims(n->dilation) + ", \"stride\": " + dims(n->stride) +
           ", \"causal\": " + ints(causal) + "}";
  }
  if (const auto* s = m.get_if<StridedMask>()) {
    return "{\"kind\": \"s2\", \"block\": " + std::to_string(s->block) +
           ", \"local\": " + std::to_string(s->local) +
           ", \"vstride\": " + std::to_string(s->vstride) +
           ", \"offset\": " + std::to_string(s->offset) +
           ", \"dense_heads\": " + std::to_string(s->dense_heads) +
           ", \"homo\": " + (s->homo_heads ? "true" : "false") + "}";
  }
  if (const auto* ph = m.get_if<PerHeadMask>()) {
    std::vector<int64_t> left, right, sink;
    bool windows = true;
    for (const MaskSpec& h : ph->heads) {
      WindowMask w{-1, -1, Alignment::bottom_right, 0};
      if (const auto* x = h.get_if<WindowMask>()) {
        w = *x;
      } else if (!h.is_none()) {
        windows = false;
      }
      windows = windows && w.align == Alignment::bottom_right;
      left.push_back(w.left);
      right.push_back(w.right);
      sink.push_back(w.sink);
    }
    if (windows) {
      return "{\"kind\": \"heads_window\", \"left\": " + ints(left) +
             ", \"right\": " + ints(right) + ", \"sink\": " + ints(sink) + "}";
    }
  }
  return "{\"kind\": \"other\", \"spec\": " + json_quote(m.to_string()) + "}";
}

// The mask as FlexAttention sees the case: one sequence of total_q x total_k tokens (packed
// documents become one slice each).
MaskSpec flex_view(const MaskSpec& m, const CaseSpec& c) {
  if (!c.varlen()) return m;
  SliceMask s;
  for (size_t d = 0; d + 1 < c.documents.size(); ++d) {
    s.slices.push_back({c.documents[d], c.documents[d + 1], c.documents[d], c.documents[d + 1],
                        m.is_none() ? SliceType::full : SliceType::causal});
  }
  return MaskSpec(s);
}

// Writes the block map; returns its JSON description, or null when it is not exported.
std::string block_map_json(const MaskSpec& m, const CaseSpec& c, const std::string& dir,
                           const std::string& stem) {
  if (m.is_dynamic()) return "null";
  const int64_t sq = c.total_q(), sk = c.total_k();
  const int64_t qt = (sq + kFlexTile - 1) / kFlexTile, kt = (sk + kFlexTile - 1) / kFlexTile;
  const int64_t plane = qt * kt;
  if (plane > kMaxMapBytes) return "null";
  const MaskGeometry g{sq, sk, c.heads_q, c.heads_kv};
  const BlockMap map = BlockMap::compile(flex_view(m, c), g, {kFlexTile, kFlexTile});
  // Heads with identical maps share a group; only per-head kinds can differ.
  const bool per_head = m.get_if<StridedMask>() || m.get_if<PerHeadMask>() ||
                        (m.get_if<BlockMask>() && m.get_if<BlockMask>()->bits.view.shape[0] > 1);
  std::vector<std::vector<uint8_t>> groups;
  std::vector<int64_t> head_group;
  std::vector<KeyTile> row;
  for (int64_t h = 0; h < (per_head ? c.heads_q : 1); ++h) {
    std::vector<uint8_t> plane_h(size_t(plane), 0);
    for (int64_t t = 0; t < qt; ++t) {
      map.row(h, t, row);
      for (const KeyTile& k : row) plane_h[size_t(t * kt + k.index)] = k.full ? 2 : 1;
    }
    size_t found = 0;
    while (found < groups.size() && groups[found] != plane_h) ++found;
    if (found == groups.size()) {
      if (int64_t(groups.size() + 1) * plane > kMaxMapBytes) return "null";
      groups.push_back(std::move(plane_h));
    }
    head_group.push_back(int64_t(found));
  }
  if (!per_head) head_group.assign(size_t(c.heads_q), 0);
  HostTensor t(DType::u8, {int64_t(groups.size()), qt, kt});
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    std::memcpy(static_cast<uint8_t*>(t.data()) + gi * size_t(plane), groups[gi].data(),
                size_t(plane));
  }
  save_npy(dir + "/" + stem + "-blockmap.npy", t.view());
  return "{\"file\": " + json_quote(stem + "-blockmap.npy") +
         ", \"block\": " + std::to_string(kFlexTile) + ", \"head_group\": " + ints(head_group) +
         "}";
}

}  // namespace

int export_cases(const std::vector<CaseSpec>& cases, const std::string& grid_name,
                 const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    throw UsageError("--export '" + dir +
                     "': cannot create the directory: " + std::strerror(errno));
  }
  std::ostringstream os;
  os << "{\n  \"format\": \"polyhead-export/1\",\n  \"grid\": " << json_quote(grid_name)
     << ",\n  \"cases\": [";
  int n = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const CaseSpec& c = cases[i];
    char stem_buf[32];
    std::snprintf(stem_buf, sizeof stem_buf, "c%04zu", i);
    const std::string stem = stem_buf;
    if (isatty(2))
      std::fprintf(stderr, "\rexport [%zu/%zu] %-60s", i + 1, cases.size(), c.name.c_str());
    // Data-dependent masks need the inputs to count their pairs; the others only their shape.
    const CaseData data(c, 1, CaseData::Fill::none);
    const MaskSpec m = data.mask();
    BenchResult counted;
    if (!m.is_dynamic()) count_case(c, data, counted);
    std::string info = "{";
    for (size_t k = 0; k < c.info.size(); ++k) {
      info += (k ? ", " : "") + json_quote(c.info[k].first) + ": " + json_number(c.info[k].second);
    }
    info += "}";
    std::string documents = "null";
    if (!c.documents.empty()) {
      save_i32(dir + "/" + stem + "-documents.npy", c.documents, {int64_t(c.documents.size())});
      documents = json_quote(stem + "-documents.npy");
    }
    std::string peers = c.peers ? "[" : "null";
    if (c.peers) {
      for (size_t k = 0; k < c.peers->size(); ++k) {
        peers += (k ? ", " : "") + json_quote((*c.peers)[k]);
      }
      peers += "]";
    }
    os << (i ? ",\n" : "\n") << "    {\"name\": " << json_quote(c.name)
       << ", \"pattern\": " << json_quote(c.pattern.empty() ? "custom" : c.pattern)
       << ", \"op\": " << json_quote(op_name(c.op))
       << ", \"dtype\": " << json_quote(dtype_name(c.dtype)) << ", \"batch\": " << c.tensor_batch()
       << ", \"seqlen_q\": " << c.total_q() << ", \"seqlen_k\": " << c.total_k()
       << ", \"heads_q\": " << c.heads_q << ", \"heads_kv\": " << c.heads_kv
       << ", \"head_dim_qk\": " << c.head_dim_qk << ", \"head_dim_v\": " << c.head_dim_v
       << ", \"repeats\": " << c.repeats
       << ",\n     \"pairs\": " << (m.is_dynamic() ? "null" : std::to_string(counted.pairs))
       << ", \"density\": " << (m.is_dynamic() ? "null" : json_number(counted.density))
       << ", \"flops\": " << (m.is_dynamic() ? "null" : json_number(counted.flops))
       << ", \"peers\": " << peers << ", \"info\": " << info << ", \"documents\": " << documents
       << ",\n     \"mask\": " << mask_json(m, c, dir, stem)
       << ",\n     \"blockmap\": " << block_map_json(m, c, dir, stem) << "}";
    ++n;
  }
  if (isatty(2)) std::fprintf(stderr, "\n");
  os << "\n  ]\n}\n";
  std::ofstream out(dir + "/cases.json", std::ios::trunc);
  out << os.str();
  out.flush();
  if (!out) throw UsageError("'" + dir + "/cases.json': cannot write");
  return n;
}

}  // namespace polyhead::cli
