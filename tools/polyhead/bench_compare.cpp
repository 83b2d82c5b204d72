// `polyhead bench compare FILE...`: result files of polyhead and its peers (format
// "polyhead-bench/1") merged case by case into one table, with each polyhead implementation's
// throughput over the best peer's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "args.h"
#include "bench.h"
#include "json.h"

namespace polyhead::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: polyhead bench compare FILE... [--markdown FILE] [--json FILE]

Merges result files of `polyhead bench --json` and of the peers' scripts (bench/anchors/) by
case name and prints one row per case: each implementation's median throughput (TFLOP/s from
the mask-aware FLOP count; GFLOP/s when every figure is below 1 TFLOP/s), "OOM" (-1) or "n/a"
(-2: unsupported, with the reason in the JSON), and the ratio of each polyhead implementation
to the best peer. Rows are in the order of the first file.

options:
  --markdown FILE   also write the table as Markdown (with the sources and their machines)
  --json FILE       also write the merged results as one polyhead-bench/1 file
)";

struct Source {
  std::string path, machine, commit, grid;
};

struct Merged {
  std::vector<std::string> impls;  // polyhead ones first, then in order of appearance
  std::vector<std::string> order;  // case names
  std::map<std::string, const Json*> meta;
  std::map<std::string, std::map<std::string, const Json*>> results;  // case -> impl -> result
  std::vector<Source> sources;
};

bool is_ours(const std::string& impl) {
  return impl.rfind("polyhead", 0) == 0;
}

// Median TFLOP/s of a result, or its -1 / -2 code.
double tflops(const Json& result) {
  const Json* t = result.find("tflops");
  if (t == nullptr || !t->is_array() || t->array("tflops").empty()) return -2.0;
  const Json& x = t->array("tflops")[0];
  return x.is_number() ? x.number("tflops") : -2.0;
}

std::string cell(const Json* result, double scale) {
  if (result == nullptr) return "";
  const double x = tflops(*result);
  if (x == -1.0) return "OOM";
  if (x < 0.0) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x * scale);
  return buf;
}

std::string text_of(const Json* v) {
  return v && v->is_string() ? v->string("text") : std::string();
}

void merge(const std::vector<Json>& docs, const std::vector<std::string>& paths, Merged& m) {
  std::vector<std::string> peers;
  for (size_t f = 0; f < docs.size(); ++f) {
    const Json& doc = docs[f];
    if (const Json* fmt = doc.find("format"); !fmt || text_of(fmt) != "polyhead-bench/1") {
      throw UsageError("'" + paths[f] + "' is not a polyhead-bench/1 result file");
    }
    Source src{paths[f], "", text_of(doc.find("commit")), text_of(doc.find("grid"))};
    if (const Json* mach = doc.find("machine"); mach && mach->is_object()) {
      src.machine = text_of(mach->find("device"));
      if (src.machine.empty()) src.machine = text_of(mach->find("cpu"));
    }
    m.sources.push_back(src);
    const Json* cases = doc.find("cases");
    if (cases == nullptr) throw UsageError("'" + paths[f] + "' has no cases");
    for (const Json& c : cases->array("cases")) {
      const std::string name = c.find("name") ? c.find("name")->string("name") : "";
      if (m.meta.emplace(name, &c).second) m.order.push_back(name);
      const Json* res = c.find("results");
      if (res == nullptr) continue;
      for (const Json::Member& r : res->object("results")) {
        auto& list = is_ours(r.first) ? m.impls : peers;
        if (std::find(list.begin(), list.end(), r.first) == list.end()) list.push_back(r.first);
        m.results[name][r.first] = &r.second;
      }
    }
  }
  m.impls.insert(m.impls.end(), peers.begin(), peers.end());
}

// Ours over the best peer that ran the case, or NaN.
double ratio(const Merged& m, const std::string& name, const std::string& ours) {
  const auto& row = m.results.at(name);
  const auto it = row.find(ours);
  if (it == row.end() || tflops(*it->second) <= 0.0) return NAN;
  double best = 0.0;
  for (const auto& [impl, r] : row) {
    if (!is_ours(impl)) best = std::max(best, tflops(*r));
  }
  return best > 0.0 ? tflops(*it->second) / best : NAN;
}

}  // namespace

int cmd_bench_compare(std::span<const std::string_view> words) {
  std::vector<std::string> files;
  std::string markdown, json_out;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string_view w = words[i];
    if (w == "--help" || w == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (w == "--markdown" || w == "--json") {
      if (i + 1 >= words.size()) throw UsageError("option '" + std::string(w) + "' needs a value");
      (w == "--markdown" ? markdown : json_out) = std::string(words[++i]);
    } else if (w.starts_with("--")) {
      throw UsageError("unknown option '" + std::string(w) + "' of bench compare");
    } else {
      files.emplace_back(w);
    }
  }
  if (files.empty()) throw UsageError("bench compare needs at least one result file");
  std::vector<Json> docs;
  for (const std::string& f : files) docs.push_back(Json::parse_file(f));
  Merged m;
  merge(docs, files, m);

  double top = 0.0;
  for (const auto& [name, row] : m.results) {
    for (const auto& [impl, r] : row) top = std::max(top, tflops(*r));
  }
  const bool giga = top < 1.0;
  const double scale = giga ? 1e3 : 1.0;
  const char* unit = giga ? "GFLOP/s" : "TFLOP/s";
  // Ratio columns only when there is a peer to compare with.
  std::vector<std::string> ours;
  const bool any_peer =
      std::any_of(m.impls.begin(), m.impls.end(), [](const std::string& i) { return !is_ours(i); });
  for (const std::string& i : m.impls) {
    if (is_ours(i) && any_peer) ours.push_back(i);
  }

  // Text table.
  std::printf("%-46s %8s", "case", "density");
  for (const std::string& i : m.impls) std::printf(" %14s", i.c_str());
  for (const std::string& o : ours) std::printf(" %14s", (o.substr(9) + " vs best").c_str());
  std::printf("   (%s)\n", unit);
  std::map<std::string, std::vector<double>> ratios;
  for (const std::string& name : m.order) {
    const Json& meta = *m.meta[name];
    const Json* d = meta.find("density");
    std::printf(
        "%-46s %8s", name.c_str(),
        d && d->is_number() ? json_number(std::round(d->number("d") * 1e4) / 1e4).c_str() : "-");
    for (const std::string& i : m.impls) {
      const auto it = m.results[name].find(i);
      std::printf(" %14s", cell(it == m.results[name].end() ? nullptr : it->second, scale).c_str());
    }
    for (const std::string& o : ours) {
      const double x = ratio(m, name, o);
      char buf[32] = "";
      if (std::isfinite(x)) {
        std::snprintf(buf, sizeof buf, "%.2fx", x);
        ratios[o].push_back(x);
      }
      std::printf(" %14s", buf);
    }
    std::printf("\n");
  }
  for (const std::string& o : ours) {
    const auto& xs = ratios[o];
    if (xs.empty()) continue;
    double log_sum = 0.0;
    for (double x : xs) log_sum += std::log(x);
    std::printf("%s: geometric mean %.2fx the best peer over %zu cases both ran\n", o.c_str(),
                std::exp(log_sum / double(xs.size())), xs.size());
  }

  if (!markdown.empty()) {
    std::ostringstream md;
    md << "Throughput in " << unit << " (median; mask-aware FLOPs, backward 2.5x forward). "
       << "OOM = out of memory (-1), n/a = the implementation cannot run the case (-2).\n\n";
    for (const Source& s : m.sources) {
      md << "- `" << s.path << "`: " << (s.machine.empty() ? "?" : s.machine)
         << (s.commit.empty() ? "" : ", commit " + s.commit)
         << (s.grid.empty() ? "" : ", grid " + s.grid) << "\n";
    }
    md << "\n| case | density |";
    for (const std::string& i : m.impls) md << " " << i << " |";
    for (const std::string& o : ours) md << " " << o << " / best peer |";
    md << "\n|---|---|";
    for (size_t k = 0; k < m.impls.size() + ours.size(); ++k) md << "---|";
    md << "\n";
    for (const std::string& name : m.order) {
      const Json* d = m.meta[name]->find("density");
      md << "| " << name << " | "
         << (d && d->is_number() ? json_number(std::round(d->number("d") * 1e4) / 1e4) : "-")
         << " |";
      for (const std::string& i : m.impls) {
        const auto it = m.results[name].find(i);
        md << " " << cell(it == m.results[name].end() ? nullptr : it->second, scale) << " |";
      }
      for (const std::string& o : ours) {
        const double x = ratio(m, name, o);
        char buf[32] = "";
        if (std::isfinite(x)) std::snprintf(buf, sizeof buf, "%.2fx", x);
        md << " " << buf << " |";
      }
      md << "\n";
    }
    std::ofstream out(markdown, std::ios::trunc);
    out << md.str();
    if (!out) throw UsageError("'" + markdown + "': cannot write");
    std::printf("wrote %s\n", markdown.c_str());
  }

  if (!json_out.empty()) {
    // The first file's header, every case once, each with every implementation's result. The
    // values are re-serialized from the parsed documents.
    std::ostringstream js;
    js << "{\n  \"format\": \"polyhead-bench/1\",\n  \"implementations\": [";
    for (size_t k = 0; k < m.impls.size(); ++k) js << (k ? ", " : "") << json_quote(m.impls[k]);
    js << "],\n  \"sources\": [";
    for (size_t k = 0; k < m.sources.size(); ++k) {
      const Source& s = m.sources[k];
      js << (k ? ", " : "") << "{\"path\": " << json_quote(s.path)
         << ", \"machine\": " << json_quote(s.machine) << ", \"commit\": " << json_quote(s.commit)
         << ", \"grid\": " << json_quote(s.grid) << "}";
    }
    js << "],\n  \"cases\": [";
    for (size_t k = 0; k < m.order.size(); ++k) {
      const std::string& name = m.order[k];
      js << (k ? ",\n" : "\n") << "    {";
      bool first = true;
      for (const Json::Member& mem : m.meta[name]->object("case")) {
        if (mem.first == "results") continue;
        js << (first ? "" : ", ") << json_quote(mem.first) << ": " << json_write(mem.second);
        first = false;
      }
      js << ",\n     \"results\": {";
      first = true;
      for (const std::string& i : m.impls) {
        const auto it = m.results[name].find(i);
        if (it == m.results[name].end()) continue;
        js << (first ? "" : ",\n       ") << json_quote(i) << ": " << json_write(*it->second);
        first = false;
      }
      js << "}}";
    }
    js << "\n  ]\n}\n";
    std::ofstream out(json_out, std::ios::trunc);
    out << js.str();
    if (!out) throw UsageError("'" + json_out + "': cannot write");
    std::printf("wrote %s\n", json_out.c_str());
  }
  return 0;
}

}  // namespace polyhead::cli
