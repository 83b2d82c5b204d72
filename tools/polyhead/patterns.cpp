#include "patterns.h"

#include <algorithm>
#include <cmath>

#include "args.h"
#include "polyhead/mask.h"
#include "rng.h"

namespace polyhead::cli {
namespace {

// Parameter access with defaults; every read key is remembered so that an unknown (misspelt)
// parameter can be reported.
class Params {
 public:
  Params(const Json& json, std::string_view pattern) : json_(json), pattern_(pattern) {}

  double number(std::string_view key, double fallback) {
    const Json* v = get(key);
    return v ? v->number(what(key)) : fallback;
  }
  int64_t integer(std::string_view key, int64_t fallback) {
    const Json* v = get(key);
    return v ? v->integer(what(key)) : fallback;
  }
  bool has(std::string_view key) { return get(key) != nullptr; }
  // A number or a list of numbers, as a list of `n` (a scalar is repeated).
  std::vector<int64_t> dims(std::string_view key, int64_t fallback, int n) {
    const Json* v = get(key);
    if (v == nullptr) return std::vector<int64_t>(size_t(n), fallback);
    if (!v->is_array()) return std::vector<int64_t>(size_t(n), v->integer(what(key)));
    std::vector<int64_t> out;
    for (const Json& x : v->array(what(key))) out.push_back(x.integer(what(key)));
    if (int(out.size()) != n) {
      throw UsageError(v->where() + ": " + what(key) + " has " + std::to_string(out.size()) +
                       " values; the pattern has " + std::to_string(n) + " dimensions");
    }
    return out;
  }
  std::vector<double> list(std::string_view key) {
    std::vector<double> out;
    if (const Json* v = get(key)) {
      for (const Json& x : v->array(what(key))) out.push_back(x.number(what(key)));
    }
    return out;
  }
  const std::set<std::string, std::less<>>& used() const { return used_; }

 private:
  const Json* get(std::string_view key) {
    used_.insert(std::string(key));
    return json_.is_object() ? json_.find(key) : nullptr;
  }
  std::string what(std::string_view key) const {
    return "parameter '" + std::string(key) + "' of pattern '" + pattern_ + "'";
  }
  const Json& json_;
  std::string pattern_;
  std::set<std::string, std::less<>> used_;
};

[[noreturn]] void misfit(std::string_view pattern, const std::string& why) {
  throw UsageError("pattern '" + std::string(pattern) + "': " + why);
}

std::vector<int64_t> draw_documents(const DocLengths& docs, int64_t total, uint64_t seed) {
  if (docs.bins.empty()) throw UsageError("document patterns need a doc_lengths histogram");
  double sum = 0.0;
  for (const DocLengths::Bin& b : docs.bins) sum += b.weight;
  Rng rng(seed, name_hash("documents"));
  std::vector<int64_t> out;
  int64_t filled = 0;
  while (filled < total) {
    double u = rng.uniform() * sum;
    size_t k = 0;
    while (k + 1 < docs.bins.size() && u >= docs.bins[k].weight) u -= docs.bins[k++].weight;
    const int64_t len =
        std::clamp(rng.between(docs.bins[k].min, docs.bins[k].max), int64_t(1), total - filled);
    out.push_back(len);
    filled += len;
  }
  return out;
}

std::vector<int64_t> offsets(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> cu{0};
  for (int64_t n : lengths) cu.push_back(cu.back() + n);
  return cu;
}

constexpr SliceType kFull = SliceType::full, kCausal = SliceType::causal;

// LongCA-bench's MaskGenerator, slice for slice (its q/k ranges and types, MagiAttention's
// bottom-right causal geometry).
std::vector<AttnSlice> share_question(const std::vector<int64_t>& cu) {
  const int64_t n = int64_t(cu.size()) - 1, total = cu.back();
  std::vector<AttnSlice> s;
  if (n == 1) return {{0, total, 0, total, kCausal}};
  // The question (document 0) and the first answer form one causal span; later answers see the
  // question in full and themselves causally.
  s.push_back({0, cu[2], 0, cu[2], kCausal});
  if (n > 2) s.push_back({cu[2], total, 0, cu[1], kFull});
  for (int64_t d = 2; d < n; ++d) s.push_back({cu[d], cu[d + 1], cu[d], cu[d + 1], kCausal});
  return s;
}

std::vector<AttnSlice> causal_blockwise(const std::vector<int64_t>& cu) {
  const int64_t n = int64_t(cu.size()) - 1;
  std::vector<AttnSlice> s;
  for (int64_t d = 0; d < n; ++d) s.push_back({cu[d], cu[d + 1], cu[d], cu[d + 1], kCausal});
  s.back().k_begin = 0;  // the last block sees everything before it
  return s;
}

std::vector<AttnSlice> prefix_lm_document(const std::vector<int64_t>& cu, int64_t prefix) {
  std::vector<AttnSlice> s;
  for (size_t d = 0; d + 1 < cu.size(); ++d) {
    const int64_t b = cu[d], e = cu[d + 1];
    if (prefix < e - b) {
      s.push_back({b, b + prefix, b, b + prefix, kFull});
      s.push_back({b + prefix, e, b, e, kCausal});
    } else {
      s.push_back({b, e, b, e, kFull});
    }
  }
  return s;
}

std::vector<AttnSlice> global_sliding_window(int64_t total, int64_t g) {
  std::vector<AttnSlice> s = {{0, total, 0, g, kCausal}, {0, g, g, total, kCausal}};
  const std::vector<AttnSlice> band = band_slices(g, total, g, g);
  s.insert(s.end(), band.begin(), band.end());
  return s;
}

std::vector<AttnSlice> block_causal_document(int64_t total, int64_t block, int64_t max_blocks,
                                             uint64_t seed, std::vector<int64_t>& cu) {
  Rng rng(seed, name_hash("block_causal_document"));
  std::vector<AttnSlice> s;
  cu = {0};
  int64_t left = total / block, begin = 0;
  while (left > 0) {
    const int64_t blocks = std::min(rng.between(1, max_blocks), left);
    left -= blocks;
    for (int64_t k = 0; k < blocks; ++k) {
      s.push_back(
          {begin + k * block, begin + (k + 1) * block, begin, begin + (k + 1) * block, kFull});
    }
    begin += blocks * block;
    cu.push_back(begin);
  }
  return s;
}

std::string dims_text(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t d = 0; d < v.size(); ++d) {
    if (d) s += 'x';
    s += std::to_string(v[d]);
  }
  return s;
}

// The grid side of an n-dimensional neighborhood pattern: given, or the n-th root of S.
std::vector<int64_t> na_grid(std::string_view pattern, Params& p, int rank, int64_t tokens) {
  if (p.has("grid")) {
    std::vector<int64_t> grid = p.dims("grid", 1, rank);
    int64_t prod = 1;
    for (int64_t g : grid) prod *= g;
    if (prod != tokens) {
      misfit(pattern, "params.grid holds " + std::to_string(prod) +
                          " tokens, not S = " + std::to_string(tokens));
    }
    return grid;
  }
  const auto side = int64_t(std::llround(std::pow(double(tokens), 1.0 / rank)));
  int64_t prod = 1;
  for (int d = 0; d < rank; ++d) prod *= side;
  if (prod != tokens) {
    misfit(pattern, "sequence length " + std::to_string(tokens) + " is not a " +
                        (rank == 2 ? "square" : "cube") + "; give params.grid");
  }
  return std::vector<int64_t>(size_t(rank), side);
}

void set_slices(CaseSpec& c, std::vector<AttnSlice> slices) {
  c.tensor_mask = CaseSpec::TensorMask::slices;
  c.slices = std::move(slices);
  c.mask = "slices:" + std::to_string(c.slices.size());
}

void set_documents(CaseSpec& c, const std::vector<int64_t>& lengths, bool causal) {
  c.seqlens_q = c.seqlens_k = lengths;
  c.batch = int64_t(lengths.size());
  c.seqlen_q = c.seqlen_k = *std::max_element(lengths.begin(), lengths.end());
  c.mask = causal ? "causal" : "none";
}

}  // namespace

std::vector<AttnSlice> band_slices(int64_t a, int64_t b, int64_t left, int64_t right) {
  // Rows split where the lower clip (i - left < a) and the upper clip (i + right > b - 1) stop
  // or start; within a piece both clips hold for every row or for none.
  std::vector<int64_t> cuts = {a, std::clamp(a + left, a, b), std::clamp(b - right, a, b), b};
  std::sort(cuts.begin(), cuts.end());
  std::vector<AttnSlice> out;
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    const int64_t s = cuts[k], e = cuts[k + 1];
    if (s == e) continue;
    const bool low = s<a + left, high = e> b - right;
    if (low && high) {
      out.push_back({s, e, a, b, SliceType::full});
    } else if (low) {  // keys [a, i + right]
      out.push_back({s, e, a, e + right, SliceType::causal});
    } else if (high) {  // keys [i - left, b)
      out.push_back({s, e, s - left, b, SliceType::inv_causal});
    } else {  // keys [i - left, i + right]
      out.push_back({s, e, s - left, e + right, SliceType::bi_causal});
    }
  }
  return out;
}

void apply_pattern(std::string_view pattern, const Json& params, const DocLengths& docs,
                   uint64_t seed, CaseSpec& c, std::set<std::string, std::less<>>* used) {
  Params p(params, pattern);
  c.pattern = std::string(pattern);
  const int64_t S = c.seqlen_k;
  const bool decode = c.op == Op::decode;
  // Document patterns share their documents at one length (the seed does not depend on the
  // pattern), so that causal_document and full_document time the same packing.
  const uint64_t doc_seed = mix64(seed ^ mix64(uint64_t(S)));
  const uint64_t own_seed = mix64(doc_seed ^ name_hash(pattern));
  const auto square_only = [&] {
    if (decode || c.seqlen_q != S) misfit(pattern, "is defined for Sq = Sk only (not decode)");
  };
  const auto documents = [&] { return draw_documents(docs, S, doc_seed); };
  const auto info = [&](const char* key, double value) { c.info.emplace_back(key, value); };

  if (pattern == "full") {
    c.mask = "none";
  } else if (pattern == "causal") {
    c.mask = "causal";
  } else if (pattern == "causal_document" || pattern == "full_document") {
    square_only();
    const std::vector<int64_t> lengths = documents();
    set_documents(c, lengths, pattern == "causal_document");
    c.documents = offsets(lengths);
    info("documents", double(lengths.size()));
  } else if (pattern == "share_question" || pattern == "causal_blockwise" ||
             pattern == "prefix_lm_document") {
    square_only();
    const std::vector<int64_t> cu = offsets(documents());
    c.documents = cu;
    info("documents", double(cu.size() - 1));
    if (pattern == "share_question") {
      set_slices(c, share_question(cu));
    } else if (pattern == "causal_blockwise") {
      set_slices(c, causal_blockwise(cu));
    } else {
      Rng rng(own_seed);
      const int64_t prefix = rng.between(1, cu[1]);
      info("prefix", double(prefix));
      set_slices(c, prefix_lm_document(cu, prefix));
    }
  } else if (pattern == "prefix_lm_causal") {
    square_only();
    Rng rng(own_seed);
    const int64_t prefix = p.has("prefix") ? p.integer("prefix", 0) : rng.between(1, S);
    if (prefix < 1 || prefix > S) misfit(pattern, "prefix must be in [1, S]");
    info("prefix", double(prefix));
    if (prefix < S) {
      set_slices(c, {{0, prefix, 0, prefix, kFull}, {prefix, S, 0, S, kCausal}});
    } else {
      set_slices(c, {{0, S, 0, S, kFull}});
    }
  } else if (pattern == "qk_sparse" || pattern == "hash_sparse") {
    square_only();
    const int64_t block = p.integer("block", 128);
    c.tensor_mask = CaseSpec::TensorMask::blocks;
    c.tensor_mask_params[0] = c.tensor_mask_params[1] = block;
    BlockPattern& bp = c.block_pattern;
    bp.seed = own_seed;
    bp.per_head = true;
    if (pattern == "qk_sparse") {
      bp.kind = BlockPattern::Kind::qk_sparse;
      bp.keep = p.number("keep", 0.3);
      info("keep", bp.keep);
    } else {
      bp.kind = BlockPattern::Kind::hash_sparse;
      bp.buckets = p.integer("buckets", 8);
      if (bp.buckets < 1) misfit(pattern, "buckets must be >= 1");
      info("buckets", double(bp.buckets));
    }
    info("block", double(block));
    c.mask = std::string(pattern) + ":block=" + std::to_string(block);
  } else if (pattern == "sliding_window" || pattern == "sliding_window_causal") {
    const int64_t w = p.integer("window", 1024);
    const bool causal = pattern == "sliding_window_causal";
    if (!causal) square_only();
    info("window", double(w));
    // LongCA: a window wider than the sequence is the full (or causal) mask.
    c.mask = w >= S ? (causal ? "causal" : "none")
                    : "window:" + std::to_string(w) + "," + (causal ? "0" : std::to_string(w));
  } else if (pattern == "global_sliding_window") {
    square_only();
    if (S < 6) misfit(pattern, "needs S >= 6");
    Rng rng(own_seed);
    const int64_t g = p.has("global") ? p.integer("global", 1) : rng.between(1, S / 3 - 1);
    if (g < 1 || g >= S) misfit(pattern, "global must be in [1, S)");
    info("global", double(g));
    set_slices(c, global_sliding_window(S, g));
  } else if (pattern == "block_causal_document") {
    square_only();
    const int64_t block = p.integer("block", 1024);
    if (block < 1 || S % block != 0) {
      misfit(pattern, "block " + std::to_string(block) + " must divide S = " + std::to_string(S));
    }
    std::vector<int64_t> cu;
    set_slices(c, block_causal_document(S, block, p.integer("max_blocks", 8), own_seed, cu));
    c.documents = cu;
    info("block", double(block));
    info("documents", double(cu.size() - 1));
  } else if (pattern == "na1d" || pattern == "na2d" || pattern == "na3d") {
    square_only();
    const int rank = pattern[2] - '0';
    const int64_t kernel_default[] = {0, 513, 17, 9};
    const std::vector<int64_t> grid = na_grid(pattern, p, rank, S);
    const std::vector<int64_t> kernel = p.dims("kernel", kernel_default[rank], rank);
    const std::vector<int64_t> dilation = p.dims("dilation", 1, rank);
    for (int d = 0; d < rank; ++d) {
      if (kernel[size_t(d)] * dilation[size_t(d)] > grid[size_t(d)]) {
        misfit(pattern, "kernel x dilation exceeds the grid (" + dims_text(grid) + ")");
      }
    }
    c.mask = "na:grid=" + dims_text(grid) + ",kernel=" + dims_text(kernel) +
             ",dilation=" + dims_text(dilation) +
             ",stride=" + dims_text(p.dims("stride", 1, rank)) +
             ",causal=" + dims_text(p.dims("causal", 0, rank));
  } else if (pattern == "s2") {
    square_only();
    c.mask = "s2:block=" + std::to_string(p.integer("block", 64)) +
             ",local=" + std::to_string(p.integer("local", 4)) +
             ",vstride=" + std::to_string(p.integer("vstride", 4)) +
             ",offset=" + std::to_string(p.integer("offset", 0)) +
             ",dense_heads=" + std::to_string(p.integer("dense_heads", 0)) +
             ",homo=" + std::to_string(p.integer("homo", 0));
  } else if (pattern == "moa") {
    // A MoA plan: per head S_h = alpha_h + beta_h * n. Given, or drawn from MoA's search space
    // (beta in {0, 1/8, ..., 1}; alpha in {0, n/16, n/8}, MoA's 1024-token steps scaled to n)
    // with mean density near params.density.
    std::vector<double> alpha = p.list("alpha"), beta = p.list("beta");
    if (alpha.empty() != beta.empty()) misfit(pattern, "give both alpha and beta, or neither");
    if (alpha.empty()) {
      const double density = p.number("density", 0.5);
      Rng rng(own_seed);
      for (int64_t h = 0; h < c.heads_q; ++h) {
        const double b =
            std::clamp(std::round((density + 0.5 * rng.symmetric()) * 8.0) / 8.0, 0.0, 1.0);
        beta.push_back(b);
        alpha.push_back(double(S / 16 * rng.below(3)));
      }
    }
    if (int64_t(alpha.size()) != c.heads_q || int64_t(beta.size()) != c.heads_q) {
      misfit(pattern,
             "alpha and beta need one value per query head (" + std::to_string(c.heads_q) + ")");
    }
    c.mask = moa_heads(alpha, beta, S, p.integer("sink", 64), p.integer("min_cache", 128),
                       p.integer("split", 64))
                 .to_string();
  } else if (pattern == "longheads") {
    c.mask = "longheads:chunk=" + std::to_string(p.integer("chunk", 256)) +
             ",k=" + std::to_string(p.integer("k", 16));
  } else if (pattern == "dhsa") {
    c.mask = "dhsa:chunk=" + std::to_string(p.integer("chunk", 64)) +
             ",k=" + std::to_string(p.integer("k", 8)) +
             ",recent=" + std::to_string(p.integer("recent", 64));
  } else if (pattern == "topk") {
    c.tensor_mask = CaseSpec::TensorMask::topk;
    c.tensor_mask_params[0] = p.integer("k", 64);
    c.tensor_mask_params[1] = p.integer("window", 1024);
    c.mask = "topk:k=" + std::to_string(c.tensor_mask_params[0]) +
             ",window=" + std::to_string(c.tensor_mask_params[1]) + ",scores=random";
  } else {
    std::string known;
    for (std::string_view k : kPatterns) known += (known.empty() ? "" : ", ") + std::string(k);
    throw UsageError("unknown pattern '" + std::string(pattern) + "' (" + known + ")");
  }
  if (decode && (c.tensor_mask == CaseSpec::TensorMask::slices || c.varlen())) {
    misfit(pattern, "is defined for Sq = Sk only (not decode)");
  }
  if (used != nullptr) used->insert(p.used().begin(), p.used().end());
}

}  // namespace polyhead::cli
