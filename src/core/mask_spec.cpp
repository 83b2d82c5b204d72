// MaskSpec text form: the grammar shared by the CLI, the Python module and the benchmarks.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "polyhead/error.h"
#include "polyhead/mask.h"
#include "polyhead/npy.h"

namespace polyhead {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

// The fields of one spec: positional values and key=value pairs, with usage for errors.
class Fields {
 public:
  Fields(std::string_view spec, std::string_view args, std::string_view usage)
      : spec_(spec), usage_(usage) {
    if (args.empty()) return;
    for (std::string_view f : split(args, ',')) {
      const size_t eq = f.find('=');
      if (eq == std::string_view::npos) {
        positional_.push_back(f);
      } else {
        keys_.push_back({f.substr(0, eq), f.substr(eq + 1), false});
      }
    }
  }
  template <typename... Args>
  [[noreturn]] void fail(std::string_view field, const Args&... what) const {
    POLYHEAD_FAIL("mask '", spec_, "': ", field, " ", what..., " (", usage_, ")");
  }
  const std::vector<std::string_view>& positional() const { return positional_; }
  // The raw value of `key`, or nullptr.
  const std::string_view* get(std::string_view key) {
    for (Key& k : keys_) {
      if (k.key == key) {
        k.used = true;
        return &k.value;
      }
    }
    return nullptr;
  }
  int64_t integer(std::string_view key, int64_t fallback) {
    const std::string_view* v = get(key);
    return v ? to_int(key, *v) : fallback;
  }
  int64_t to_int(std::string_view field, std::string_view text) const {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
      fail(field, "= '", text, "' is not an integer");
    }
    return value;
  }
  // "16x16x8" (or a single value broadcast to every dimension).
  std::vector<int64_t> dims(std::string_view key, int rank, int64_t fallback) {
    const std::string_view* v = get(key);
    if (!v) return std::vector<int64_t>(size_t(std::max(rank, 1)), fallback);
    std::vector<int64_t> out;
    for (std::string_view p : split(*v, 'x')) out.push_back(to_int(key, p));
    if (rank > 0 && out.size() == 1) out.assign(size_t(rank), out[0]);
    if (rank > 0 && int(out.size()) != rank) {
      fail(key, "= '", *v, "' has ", out.size(), " dimensions but the grid has ", rank);
    }
    return out;
  }
  void finish() const {
    for (const Key& k : keys_) {
      if (!k.used) fail(k.key, "is not a field of this mask");
    }
  }

 private:
  struct Key {
    std::string_view key, value;
    bool used;
  };
  std::string_view spec_, usage_;
  std::vector<std::string_view> positional_;
  std::vector<Key> keys_;
};

MaskTensor load_tensor(std::string_view path, std::string_view spec, DType want) {
  POLYHEAD_CHECK(!path.empty(), "mask '", spec, "': missing the .npy file name");
  NpyArray a;
  try {
    a = load_npy(std::string(path));
  } catch (const Error& e) {
    POLYHEAD_FAIL("mask '", spec, "': ", e.what());
  }
  POLYHEAD_CHECK(a.dtype == want, "mask '", spec, "': ", path, " holds ", dtype_name(a.dtype),
                 "; expected ", dtype_name(want) == "u8" ? "bool or uint8" : "float32");
  MaskTensor t;
  t.view = a.view();
  t.owner = a.data;
  t.source = std::string(path);
  return t;
}

std::string tensor_name(const MaskTensor& t) {
  return t.source.empty() ? "<tensor " + t.view.describe() + ">" : t.source;
}

std::string join_dims(const std::array<int64_t, 3>& v, int rank) {
  std::string s;
  for (int d = 0; d < rank; ++d) {
    if (d) s += 'x';
    s += std::to_string(v[size_t(d)]);
  }
  return s;
}

constexpr std::string_view kKinds =
    "none, causal, window, na, s2, heads, blocks, slices, longheads, dhsa, topk";

MaskSpec parse_window(std::string_view text, std::string_view args) {
  Fields f(text, args, "window:LEFT,RIGHT[,sink=N][,topleft], -1 for unbounded");
  const auto& pos = f.positional();
  if (pos.size() < 2 || pos.size() > 3) f.fail("LEFT,RIGHT", "are missing");
  const int64_t left = f.to_int("LEFT", pos[0]), right = f.to_int("RIGHT", pos[1]);
  if (left < -1) f.fail("LEFT", "= ", left, " must be >= -1");
  if (right < -1) f.fail("RIGHT", "= ", right, " must be >= -1");
  Alignment align = Alignment::bottom_right;
  if (pos.size() == 3) {
    if (pos[2] == "topleft")
      align = Alignment::top_left;
    else if (pos[2] != "bottomright")
      f.fail("alignment", "'", pos[2], "' is not topleft or bottomright");
  }
  const int64_t sink = f.integer("sink", 0);
  if (sink < 0) f.fail("sink", "= ", sink, " must be >= 0");
  f.finish();
  return MaskSpec::window(left, right, align, sink);
}

MaskSpec parse_na(std::string_view text, std::string_view args) {
  Fields f(text, args, "na:grid=16x16,kernel=5x5[,dilation=1x1][,stride=1x1][,causal=0x0]");
  if (!f.positional().empty()) f.fail(f.positional()[0], "is not key=value");
  NeighborhoodMask m;
  if (!f.get("grid")) f.fail("grid", "is missing");
  const std::vector<int64_t> grid = f.dims("grid", 0, 1);
  if (grid.size() < 1 || grid.size() > 3) f.fail("grid", "must have 1 to 3 dimensions");
  m.rank = int(grid.size());
  if (!f.get("kernel")) f.fail("kernel", "is missing");
  const auto kernel = f.dims("kernel", m.rank, 1), dil = f.dims("dilation", m.rank, 1);
  const auto stride = f.dims("stride", m.rank, 1), causal = f.dims("causal", m.rank, 0);
  for (int d = 0; d < m.rank; ++d) {
    const size_t u = size_t(d);
    m.grid[u] = grid[u], m.kernel[u] = kernel[u], m.dilation[u] = dil[u], m.stride[u] = stride[u];
    if (causal[u] != 0 && causal[u] != 1) f.fail("causal", "values must be 0 or 1");
    m.causal[u] = causal[u] == 1;
  }
  f.finish();
  return MaskSpec(m);
}

MaskSpec parse_s2(std::string_view text, std::string_view args) {
  Fields f(text, args, "s2:block=64,local=4,vstride=4[,offset=0][,dense_heads=0][,homo=0]");
  if (!f.positional().empty()) f.fail(f.positional()[0], "is not key=value");
  StridedMask m;
  m.block = f.integer("block", m.block);
  m.local = f.integer("local", m.local);
  m.vstride = f.integer("vstride", m.vstride);
  m.offset = f.integer("offset", m.offset);
  m.dense_heads = f.integer("dense_heads", m.dense_heads);
  const int64_t homo = f.integer("homo", 0);
  if (homo != 0 && homo != 1) f.fail("homo", "must be 0 or 1");
  m.homo_heads = homo == 1;
  if (m.block < 1) f.fail("block", "must be >= 1");
  if (m.local < 1) f.fail("local", "must be >= 1");
  if (m.vstride < 1) f.fail("vstride", "must be >= 1");
  if (m.offset < 0) f.fail("offset", "must be >= 0");
  if (m.dense_heads < 0) f.fail("dense_heads", "must be >= 0");
  f.finish();
  return MaskSpec(m);
}

MaskSpec parse_blocks(std::string_view text, std::string_view args) {
  Fields f(text, args, "blocks:FILE.npy,bq=64,bk=64");
  BlockMask m;
  m.block_q = f.integer("bq", m.block_q);
  m.block_k = f.integer("bk", m.block_k);
  if (m.block_q < 1) f.fail("bq", "must be >= 1");
  if (m.block_k < 1) f.fail("bk", "must be >= 1");
  std::string_view file;
  if (const std::string_view* v = f.get("file"))
    file = *v;
  else if (f.positional().size() == 1)
    file = f.positional()[0];
  else
    f.fail("FILE", "is missing");
  f.finish();
  m.bits = load_tensor(file, text, DType::u8);
  if (m.bits.view.rank == 2) {  // [QB, KB] for every head
    m.bits.view.rank = 3;
    m.bits.view.shape = {1, m.bits.view.shape[0], m.bits.view.shape[1], 0};
    m.bits.view.stride = {0, m.bits.view.stride[0], m.bits.view.stride[1], 0};
  }
  return MaskSpec(m);
}

constexpr std::string_view kSliceTypes[] = {"full", "causal", "invcausal", "bicausal"};

MaskSpec parse_slices(std::string_view text, std::string_view args) {
  constexpr std::string_view usage =
      "slices:QB,QE,KB,KE,TYPE|... with TYPE full, causal, invcausal or bicausal; or "
      "slices:FILE.npy holding int32 [n, 5] with TYPE 0-3";
  SliceMask m;
  if (args.size() > 4 && args.substr(args.size() - 4) == ".npy") {
    const MaskTensor t = load_tensor(args, text, DType::i32);
    const TensorView& v = t.view;
    POLYHEAD_CHECK(v.rank == 2 && v.shape[1] == 5, "mask '", text, "': ", args, " has shape ",
                   v.describe(), "; expected [n, 5] (", usage, ")");
    const auto* p = static_cast<const int32_t*>(v.data);
    for (int64_t s = 0; s < v.shape[0]; ++s) {
      const int32_t* r = p + s * 5;
      POLYHEAD_CHECK(r[4] >= 0 && r[4] <= 3, "mask '", text, "': slice ", s, " type ", r[4],
                     " is not 0-3 (", usage, ")");
      m.slices.push_back({r[0], r[1], r[2], r[3], SliceType(r[4])});
    }
    return MaskSpec(std::move(m));
  }
  for (std::string_view one : split(args, '|')) {
    const auto f = split(one, ',');
    POLYHEAD_CHECK(f.size() == 5, "mask '", text, "': slice '", one, "' has ", f.size(),
                   " fields, expected 5 (", usage, ")");
    Fields fields(text, "", usage);
    AttnSlice a{fields.to_int("QB", f[0]), fields.to_int("QE", f[1]), fields.to_int("KB", f[2]),
                fields.to_int("KE", f[3]), SliceType::full};
    size_t t = 0;
    while (t < 4 && kSliceTypes[t] != f[4]) ++t;
    POLYHEAD_CHECK(t < 4, "mask '", text, "': slice type '", f[4], "' is unknown (", usage, ")");
    a.type = SliceType(t);
    m.slices.push_back(a);
  }
  return MaskSpec(std::move(m));
}

MaskSpec parse_dynamic(std::string_view kind, std::string_view text, std::string_view args) {
  if (kind == "longheads") {
    Fields f(text, args, "longheads:chunk=256,k=16");
    LongHeadsMask m;
    m.chunk = f.integer("chunk", m.chunk);
    m.k = f.integer("k", m.k);
    if (m.chunk < 1) f.fail("chunk", "must be >= 1");
    if (m.k < 3) f.fail("k", "must be >= 3");
    f.finish();
    return MaskSpec(m);
  }
  if (kind == "dhsa") {
    Fields f(text, args, "dhsa:chunk=64,k=8,recent=64");
    DhsaMask m;
    m.chunk = f.integer("chunk", m.chunk);
    m.k = f.integer("k", m.k);
    m.recent = f.integer("recent", m.recent);
    if (m.chunk < 1) f.fail("chunk", "must be >= 1");
    if (m.k < 0) f.fail("k", "must be >= 0");
    if (m.recent < 0) f.fail("recent", "must be >= 0");
    f.finish();
    return MaskSpec(m);
  }
  Fields f(text, args, "topk:k=64,window=1024,scores=FILE.npy");
  TopKMask m;
  m.k = f.integer("k", m.k);
  m.window = f.integer("window", m.window);
  if (m.k < 1) f.fail("k", "must be >= 1");
  if (m.window < 1) f.fail("window", "must be >= 1");
  const std::string_view* scores = f.get("scores");
  if (!scores) f.fail("scores", "is missing");
  f.finish();
  m.scores = load_tensor(*scores, text, DType::f32);
  return MaskSpec(m);
}

}  // namespace

bool MaskSpec::is_dynamic() const {
  return std::holds_alternative<LongHeadsMask>(kind_) || std::holds_alternative<DhsaMask>(kind_) ||
         std::holds_alternative<TopKMask>(kind_);
}

Alignment MaskSpec::alignment() const {
  if (const auto* w = get_if<WindowMask>()) return w->align;
  return Alignment::bottom_right;
}

std::string MaskSpec::to_string() const {
  return std::visit(
      Overloaded{
          [](const NoMask&) { return std::string("none"); },
          [](const WindowMask& w) {
            const bool topleft = w.align == Alignment::top_left;
            if (w.left == -1 && w.right == 0 && w.sink == 0) {
              return std::string(topleft ? "causal:topleft" : "causal");
            }
            return "window:" + std::to_string(w.left) + "," + std::to_string(w.right) +
                   (w.sink > 0 ? ",sink=" + std::to_string(w.sink) : "") +
                   (topleft ? ",topleft" : "");
          },
          [](const NeighborhoodMask& m) {
            std::array<int64_t, 3> causal{};
            for (size_t d = 0; d < 3; ++d) causal[d] = m.causal[d] ? 1 : 0;
            return "na:grid=" + join_dims(m.grid, m.rank) +
                   ",kernel=" + join_dims(m.kernel, m.rank) +
                   ",dilation=" + join_dims(m.dilation, m.rank) +
                   ",stride=" + join_dims(m.stride, m.rank) +
                   ",causal=" + join_dims(causal, m.rank);
          },
          [](const StridedMask& m) {
            return "s2:block=" + std::to_string(m.block) + ",local=" + std::to_string(m.local) +
                   ",vstride=" + std::to_string(m.vstride) + ",offset=" + std::to_string(m.offset) +
                   ",dense_heads=" + std::to_string(m.dense_heads) +
                   (m.homo_heads ? ",homo=1" : "");
          },
          [](const BlockMask& m) {
            return "blocks:" + tensor_name(m.bits) + ",bq=" + std::to_string(m.block_q) +
                   ",bk=" + std::to_string(m.block_k);
          },
          [](const SliceMask& m) {
            std::string s = "slices:";
            for (size_t i = 0; i < m.slices.size(); ++i) {
              const AttnSlice& a = m.slices[i];
              if (i) s += '|';
              s += std::to_string(a.q_begin) + "," + std::to_string(a.q_end) + "," +
                   std::to_string(a.k_begin) + "," + std::to_string(a.k_end) + ",";
              s += kSliceTypes[size_t(a.type)];
            }
            return s;
          },
          [](const PerHeadMask& m) {
            std::string s = "heads:";
            for (size_t h = 0; h < m.heads.size(); ++h) {
              if (h) s += '|';
              s += m.heads[h].to_string();
            }
            return s;
          },
          [](const LongHeadsMask& m) {
            return "longheads:chunk=" + std::to_string(m.chunk) + ",k=" + std::to_string(m.k);
          },
          [](const DhsaMask& m) {
            return "dhsa:chunk=" + std::to_string(m.chunk) + ",k=" + std::to_string(m.k) +
                   ",recent=" + std::to_string(m.recent);
          },
          [](const TopKMask& m) {
            return "topk:k=" + std::to_string(m.k) + ",window=" + std::to_string(m.window) +
                   ",scores=" + tensor_name(m.scores);
          },
      },
      kind_);
}

MaskSpec MaskSpec::parse(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const bool has_args = colon != std::string_view::npos;
  const std::string_view args = has_args ? text.substr(colon + 1) : std::string_view();

  if (kind == "none" || kind == "full") {
    POLYHEAD_CHECK(!has_args, "mask '", text, "': '", kind, "' takes no arguments");
    return none();
  }
  if (kind == "causal") {
    if (!has_args) return causal();
    if (args == "topleft") return causal(Alignment::top_left);
    if (args == "bottomright") return causal();
    POLYHEAD_FAIL("mask '", text, "': alignment '", args,
                  "' is not topleft or bottomright (causal or causal:topleft)");
  }
  constexpr std::string_view kWithArgs[] = {"window", "na",        "s2",   "blocks",
                                            "slices", "longheads", "dhsa", "topk"};
  const bool known =
      std::find(std::begin(kWithArgs), std::end(kWithArgs), kind) != std::end(kWithArgs);
  POLYHEAD_CHECK(known || kind == "heads", "mask '", text, "': unknown kind '", kind, "' (one of ",
                 kKinds, ")");
  POLYHEAD_CHECK(has_args, "mask '", text, "': '", kind,
                 "' needs arguments after ':' (see the README's mask grammar)");
  if (kind == "window") return parse_window(text, args);
  if (kind == "na") return parse_na(text, args);
  if (kind == "s2") return parse_s2(text, args);
  if (kind == "blocks") return parse_blocks(text, args);
  if (kind == "slices") return parse_slices(text, args);
  if (kind == "longheads" || kind == "dhsa" || kind == "topk")
    return parse_dynamic(kind, text, args);
  if (kind == "heads") {
    PerHeadMask m;
    for (std::string_view sub : split(args, '|')) {
      MaskSpec s = parse(sub);
      POLYHEAD_CHECK(!s.get_if<PerHeadMask>() && !s.is_dynamic(), "mask '", text, "': spec '", sub,
                     "' cannot be used per head (static kinds only: none, causal, window, na, ",
                     "s2, blocks)");
      m.heads.push_back(std::move(s));
    }
    return MaskSpec(std::move(m));
  }
  POLYHEAD_FAIL("mask '", text, "': unknown kind '", kind, "' (one of ", kKinds, ")");
}

MaskSpec moa_heads(const std::vector<double>& alpha, const std::vector<double>& beta,
                   int64_t n_total, int64_t sink, int64_t min_cache, int64_t split) {
  POLYHEAD_CHECK(alpha.size() == beta.size() && !alpha.empty(), "moa_heads: alpha has ",
                 alpha.size(), " entries and beta ", beta.size(), "; one pair per head");
  POLYHEAD_CHECK(n_total >= 1 && sink >= 0 && min_cache >= 0 && split >= 1,
                 "moa_heads: n_total = ", n_total, ", sink = ", sink, ", min_cache = ", min_cache,
                 ", split = ", split, " (n_total >= 1, split >= 1, others >= 0)");
  PerHeadMask m;
  for (size_t h = 0; h < alpha.size(); ++h) {
    int64_t c = std::min(int64_t(std::floor(alpha[h] + beta[h] * double(n_total))), n_total);
    c = (std::max(c, min_cache) + split - 1) / split * split;
    const int64_t s = std::min(c, sink);
    POLYHEAD_CHECK(c - s >= 1, "moa_heads: head ", h, " keeps ", c,
                   " keys, all of them sinks; raise min_cache above sink = ", sink);
    // (j <= i) and (j < s or i - j < c - s): a causal window of c - s keys plus s sinks.
    m.heads.push_back(
        MaskSpec::window(std::max<int64_t>(c - s - 1, 0), 0, Alignment::bottom_right, s));
  }
  return MaskSpec(std::move(m));
}

}  // namespace polyhead
