#include "grid.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <span>

#include "args.h"
#include "patterns.h"
#include "polyhead/mask.h"

namespace polyhead::cli {
namespace {

constexpr std::string_view kGroupKeys[] = {"name",
                                           "patterns",
                                           "mask",
                                           "seqlens",
                                           "q_lens",
                                           "batches",
                                           "heads",
                                           "head_dims",
                                           "dtypes",
                                           "ops",
                                           "params",
                                           "sweep",
                                           "peers",
                                           "repeats",
                                           "baseline",
                                           "expected_time_ratio",
                                           "min_ceiling_ratio",
                                           "max_peak_ratio",
                                           "memory"};
constexpr std::string_view kTopKeys[] = {"format",      "name",     "description", "seed",
                                         "doc_lengths", "defaults", "groups",      "comment"};

void check_keys(const Json& obj, std::span<const std::string_view> allowed, std::string_view what) {
  for (const Json::Member& m : obj.object(what)) {
    if (m.first == "comment") continue;
    if (std::find(allowed.begin(), allowed.end(), m.first) == allowed.end()) {
      std::string list;
      for (std::string_view k : allowed) list += (list.empty() ? "" : ", ") + std::string(k);
      throw UsageError(m.second.where() + ": unknown key '" + m.first + "' in " +
                       std::string(what) + " (" + list + ")");
    }
  }
}

// A group key: the group's value, else the defaults', else null.
const Json& lookup(const Json& group, const Json& defaults, std::string_view key) {
  static const Json null;
  if (const Json* v = group.find(key)) return *v;
  if (const Json* v = defaults.find(key)) return *v;
  return null;
}

// A list-valued axis; a scalar counts as a list of one.
std::vector<const Json*> axis(const Json& v) {
  std::vector<const Json*> out;
  if (v.is_array()) {
    for (const Json& x : v.array("axis")) out.push_back(&x);
  } else if (!v.is_null()) {
    out.push_back(&v);
  }
  return out;
}

std::vector<std::pair<int64_t, int64_t>> heads_axis(const Json& v) {
  std::vector<std::pair<int64_t, int64_t>> out;
  const auto pair = [&](const Json& p) {
    const auto& xs = p.array("heads");
    if (xs.size() != 2) throw UsageError(p.where() + ": heads must be [Hq, Hkv]");
    const int64_t hq = xs[0].integer("Hq"), hkv = xs[1].integer("Hkv");
    if (hq < 1 || hkv < 1 || hq % hkv != 0) {
      throw UsageError(p.where() + ": heads [" + std::to_string(hq) + ", " + std::to_string(hkv) +
                       "]: Hkv must divide Hq");
    }
    out.emplace_back(hq, hkv);
  };
  if (v.is_null()) return {{8, 8}};
  const auto& xs = v.array("heads");
  if (!xs.empty() && xs[0].is_number()) {
    pair(v);
  } else {
    for (const Json& p : xs) pair(p);
  }
  return out;
}

DType parse_dtype(const Json& v) {
  const std::string& s = v.string("dtype");
  if (s == "bf16") return DType::bf16;
  if (s == "f16" || s == "fp16") return DType::f16;
  if (s == "f32" || s == "fp32") return DType::f32;
  throw UsageError(v.where() + ": dtype '" + s + "' is not one of bf16, f16, f32");
}

Op parse_op(const Json& v) {
  const std::string& s = v.string("op");
  if (s == "fwd") return Op::fwd;
  if (s == "bwd") return Op::bwd;
  if (s == "decode") return Op::decode;
  throw UsageError(v.where() + ": op '" + s + "' is not one of fwd, bwd, decode");
}

int64_t positive(const Json& v, std::string_view what) {
  const int64_t x = v.integer(what);
  if (x < 1) throw UsageError(v.where() + ": " + std::string(what) + " must be >= 1");
  return x;
}

std::string patterns_text(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string number_text(double x) {
  return x == std::floor(x) ? std::to_string(int64_t(x)) : json_number(x);
}

struct Expansion {
  BenchGrid& grid;
  const DocLengths& docs;
  std::set<std::string> names;

  void add(CaseSpec c, const Json& where) {
    if (!names.insert(c.name).second) {
      throw UsageError(where.where() + ": case name '" + c.name + "' appears twice in the grid");
    }
    grid.cases.push_back(std::move(c));
  }

  // One point of a group's cross product.
  struct Point {
    std::string pattern;
    Op op = Op::fwd;
    int64_t seqlen = 0, q_len = 1, batch = 1;
    std::pair<int64_t, int64_t> heads;
    int64_t head_dim = 128;
    DType dtype = DType::bf16;
    const Json* sweep_value = nullptr;
  };

  // The case at one point: sizes, the pattern's mask drawn from the grid seed, its name, and how
  // to draw it again at another size (bench --verify's scaled-down instances).
  CaseSpec make_case(const Point& pt, const Json& g, const Json& params, const Json& mask,
                     const std::string& sweep_key, std::set<std::string, std::less<>>& used) {
    CaseSpec c;
    c.op = pt.op;
    c.seqlen_k = pt.seqlen;
    c.seqlen_q = pt.op == Op::decode ? pt.q_len : pt.seqlen;
    c.batch = pt.batch;
    c.heads_q = pt.heads.first;
    c.heads_kv = pt.heads.second;
    c.head_dim_qk = c.head_dim_v = pt.head_dim;
    c.dtype = pt.dtype;
    const Json pattern_params = with_sweep(params, sweep_key, pt.sweep_value);
    const std::string custom = mask.is_null() ? "" : mask.string("mask");
    const auto draw = [pattern = pt.pattern, pattern_params, custom, docs = docs, seed = grid.seed](
                          CaseSpec& x, std::set<std::string, std::less<>>* read) {
      if (pattern == "custom") {
        x.pattern = "custom";
        x.mask = custom;
      } else {
        apply_pattern(pattern, pattern_params, docs, seed, x, read);
      }
    };
    draw(c, &used);
    if (pt.batch > 1 && (c.varlen() || !c.slices.empty())) {
      throw UsageError(g.where() + ": pattern '" + pt.pattern +
                       "' packs documents into one sequence: use batch 1");
    }
    c.name = case_name(c, pt.pattern == "custom" ? g.find("name")->string("name") : pt.pattern,
                       sweep_key, pt.sweep_value);
    c.rescale = [draw, base = c](int64_t seqlen, int64_t hq, int64_t hkv, int64_t batch) {
      CaseSpec x;
      x.op = base.op;
      x.seqlen_k = seqlen;
      x.seqlen_q = base.op == Op::decode ? std::min(base.seqlen_q, seqlen) : seqlen;
      x.batch = batch;
      x.heads_q = hq;
      x.heads_kv = hkv;
      x.head_dim_qk = base.head_dim_qk;
      x.head_dim_v = base.head_dim_v;
      x.dtype = base.dtype;
      draw(x, nullptr);
      x.name = base.name;
      return x;
    };
    return c;
  }

  void group(const Json& g, const Json& defaults) {
    check_keys(g, kGroupKeys, "a group");
    const Json& patterns = lookup(g, defaults, "patterns");
    const Json& mask = lookup(g, defaults, "mask");
    if (patterns.is_null() == mask.is_null()) {
      throw UsageError(g.where() + ": a group needs either 'patterns' or 'mask'");
    }
    const Json* name = g.find("name");
    if (!mask.is_null() && name == nullptr) {
      throw UsageError(g.where() + ": a group with a raw 'mask' needs a 'name'");
    }
    if (!mask.is_null()) MaskSpec::parse(mask.string("mask"));  // fail early on a bad spec

    // The axes, typed; a missing one takes its default.
    std::vector<std::string> pattern_list;
    for (const Json* p : axis(patterns)) pattern_list.push_back(p->string("pattern"));
    if (!mask.is_null()) pattern_list.push_back("custom");
    const auto ints = [&](std::string_view key, int64_t fallback) {
      std::vector<int64_t> out;
      for (const Json* v : axis(lookup(g, defaults, key))) out.push_back(positive(*v, key));
      if (out.empty()) out.push_back(fallback);
      return out;
    };
    const std::vector<int64_t> seqlens = ints("seqlens", 0), q_lens = ints("q_lens", 1),
                               batches = ints("batches", 1), dims = ints("head_dims", 128);
    if (seqlens[0] == 0) throw UsageError(g.where() + ": a group needs 'seqlens'");
    std::vector<Op> ops;
    for (const Json* v : axis(lookup(g, defaults, "ops"))) ops.push_back(parse_op(*v));
    if (ops.empty()) ops.push_back(Op::fwd);
    std::vector<DType> dtypes;
    for (const Json* v : axis(lookup(g, defaults, "dtypes"))) dtypes.push_back(parse_dtype(*v));
    if (dtypes.empty()) dtypes.push_back(DType::bf16);
    const auto heads = heads_axis(lookup(g, defaults, "heads"));
    const Json& params = lookup(g, defaults, "params");
    const Json& sweep = lookup(g, defaults, "sweep");

    // The sweep: one parameter over a list of values (e.g. the kept fraction of qk_sparse).
    std::string sweep_key;
    std::vector<const Json*> sweep_values = {nullptr};
    if (!sweep.is_null()) {
      const auto& members = sweep.object("sweep");
      if (members.size() != 1) throw UsageError(sweep.where() + ": sweep one parameter only");
      sweep_key = members[0].first;
      sweep_values = axis(members[0].second);
    }

    std::vector<Point> points;
    for (const std::string& pattern : pattern_list) {
      for (const Op op : ops) {
        for (const int64_t seqlen : seqlens) {
          for (const int64_t q_len : (op == Op::decode ? q_lens : std::vector<int64_t>{1})) {
            for (const int64_t batch : batches) {
              for (const auto& h : heads) {
                for (const int64_t dim : dims) {
                  for (const DType dtype : dtypes) {
                    for (const Json* sv : sweep_values) {
                      points.push_back({pattern, op, seqlen, q_len, batch, h, dim, dtype, sv});
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    const size_t before = grid.cases.size();
    std::set<std::string, std::less<>> used;  // parameters some pattern of the group read
    for (const Point& pt : points) {
      CaseSpec c = make_case(pt, g, params, mask, sweep_key, used);
      targets(g, defaults, c);
      add(std::move(c), g);
    }
    const auto unused = [&](const Json& obj, std::string_view what) {
      if (!obj.is_object()) return;
      for (const Json::Member& m : obj.object(what)) {
        if (used.count(m.first) == 0 && mask.is_null()) {
          throw UsageError(m.second.where() + ": no pattern of the group (" +
                           patterns_text(pattern_list) + ") has a parameter '" + m.first + "'");
        }
      }
    };
    unused(params, "params");
    unused(sweep, "sweep");
    if (name != nullptr && grid.cases.size() == before + 1) {
      names.erase(grid.cases.back().name);
      grid.cases.back().name = name->string("name");
      if (!names.insert(grid.cases.back().name).second) {
        throw UsageError(name->where() + ": case name '" + grid.cases.back().name +
                         "' appears twice in the grid");
      }
    }
  }

  // The pattern parameters with the swept one set to `value` (none when value is null).
  static Json with_sweep(const Json& params, const std::string& key, const Json* value) {
    if (value == nullptr) return params;
    std::string text = "{";
    if (params.is_object()) {
      for (const Json::Member& m : params.object("params")) {
        if (m.first != key) {
          text += json_quote(m.first) + ": " + json_number(m.second.number("a parameter")) + ", ";
        }
      }
    }
    text += json_quote(key) + ": " + json_number(value->number("a swept value")) + "}";
    return Json::parse(text, value->where());
  }

  // "[op-]BASE-sS[-bB]-dD-hHQxHKV-DTYPE[-KEYVALUE]"; decode: "decode-BASE-bB-qSQ-kSK-...".
  static std::string case_name(const CaseSpec& c, const std::string& base, const std::string& key,
                               const Json* value) {
    std::string n = c.op == Op::fwd ? "" : std::string(op_name(c.op)) + "-";
    n += base;
    if (c.op == Op::decode) {
      n += "-b" + std::to_string(c.batch) + "-q" + std::to_string(c.seqlen_q) + "-k" +
           std::to_string(c.seqlen_k);
    } else {
      n += "-s" + std::to_string(c.total_k());
      if (c.batch > 1 && !c.varlen()) n += "-b" + std::to_string(c.batch);
    }
    n += "-d" + std::to_string(c.head_dim_qk) + "-h" + std::to_string(c.heads_q) + "x" +
         std::to_string(c.heads_kv) + "-" + std::string(dtype_name(c.dtype));
    if (value != nullptr) n += "-" + key + number_text(value->number("sweep"));
    return n;
  }

  static void targets(const Json& g, const Json& defaults, CaseSpec& c) {
    if (const Json& v = lookup(g, defaults, "peers"); !v.is_null()) {
      c.peers.emplace();
      for (const Json* p : axis(v)) c.peers->push_back(p->string("peer"));
    }
    if (const Json& v = lookup(g, defaults, "repeats"); !v.is_null()) {
      c.repeats = int(positive(v, "repeats"));
    }
    if (const Json* v = g.find("baseline")) c.baseline = v->string("baseline");
    if (const Json* v = g.find("expected_time_ratio")) {
      c.expected_time_ratio = v->number("expected_time_ratio");
    }
    if (const Json* v = g.find("min_ceiling_ratio")) {
      c.min_ceiling_ratio = v->number("min_ceiling_ratio");
    }
    if (const Json* v = g.find("max_peak_ratio")) c.max_peak_ratio = v->number("max_peak_ratio");
    if (const Json* v = g.find("memory")) c.memory = v->boolean("memory");
  }
};

}  // namespace

BenchGrid expand_grid(const Json& doc, const std::string& source) {
  check_keys(doc, kTopKeys, "the grid");
  if (const Json* f = doc.find("format"); f && f->string("format") != "polyhead-grid/1") {
    throw UsageError(f->where() + ": format '" + f->string("format") + "' is not polyhead-grid/1");
  }
  BenchGrid grid;
  grid.source = source;
  if (const Json* v = doc.find("name")) grid.name = v->string("name");
  if (const Json* v = doc.find("description")) grid.description = v->string("description");
  if (const Json* v = doc.find("seed")) grid.seed = uint64_t(v->integer("seed"));
  DocLengths docs;
  if (const Json* v = doc.find("doc_lengths")) {
    for (const Json& bin : v->array("doc_lengths")) {
      const auto& xs = bin.array("a doc_lengths bin");
      if (xs.size() != 3) throw UsageError(bin.where() + ": a bin is [min, max, weight]");
      DocLengths::Bin b{xs[0].integer("min"), xs[1].integer("max"), xs[2].number("weight")};
      if (b.min < 1 || b.max < b.min || !(b.weight >= 0.0)) {
        throw UsageError(bin.where() + ": a bin needs 1 <= min <= max and weight >= 0");
      }
      docs.bins.push_back(b);
    }
  }
  static const Json empty = Json::parse("{}", "<defaults>");
  const Json* defaults = doc.find("defaults");
  if (defaults != nullptr) check_keys(*defaults, kGroupKeys, "defaults");
  const Json* groups = doc.find("groups");
  if (groups == nullptr) throw UsageError(source + ": the grid has no 'groups'");
  Expansion ex{grid, docs, {}};
  for (const Json& g : groups->array("groups")) ex.group(g, defaults ? *defaults : empty);
  if (grid.cases.empty()) throw UsageError(source + ": the grid has no cases");
  for (const CaseSpec& c : grid.cases) {
    if (!c.baseline.empty() && ex.names.count(c.baseline) == 0) {
      throw UsageError(source + ": case '" + c.name + "' names baseline '" + c.baseline +
                       "', which is not a case of the grid");
    }
  }
  return grid;
}

BenchGrid load_grid_file(const std::string& path) {
  return expand_grid(Json::parse_file(path), path);
}

BenchGrid load_grid_preset(std::string_view name) {
  const std::string_view text = builtin_grid_text(name);
  if (text.empty()) {
    std::string list;
    for (std::string_view p : kGridPresets) list += (list.empty() ? "" : ", ") + std::string(p);
    throw UsageError("--preset = '" + std::string(name) + "' is not one of " + list);
  }
  const std::string origin = "bench/grids/" + std::string(name) + ".json";
  BenchGrid grid = expand_grid(Json::parse(text, origin), origin);
  grid.source = "preset " + std::string(name);
  return grid;
}

}  // namespace polyhead::cli
