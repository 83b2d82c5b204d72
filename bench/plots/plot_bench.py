#!/usr/bin/env python3
"""PNG plots of polyhead-bench/1 result files (polyhead's and its peers', or one merged by
`polyhead bench compare --json`):

    python3 bench/plots/plot_bench.py RESULTS.json [MORE.json ...] --out DIR [--title TEXT]

  DIR/tflops_vs_seqlen.png     forward throughput against sequence length, one panel per mask
                               pattern, one line per implementation (the most common head
                               configuration of the forward cases; others are left out)
  DIR/speedup_vs_density.png   for sparse masks: each implementation's time on the full mask
                               over its time on the sparse one, against the mask's density, with
                               the ideal 1 / density

Needs matplotlib (imported only here; without it the script says so and exits 0: the tables of
`polyhead bench compare` stand alone).
"""
import argparse
import collections
import json
import math
import os
import sys


def load(paths):
    """name -> (case metadata, {implementation: result})."""
    cases = collections.OrderedDict()
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        if doc.get("format") != "polyhead-bench/1":
            raise SystemExit(f"{path}: not a polyhead-bench/1 result file")
        for c in doc["cases"]:
            meta, results = cases.setdefault(c["name"], (c, {}))
            results.update(c.get("results", {}))
    return cases


def ok_tflops(result):
    t = result.get("tflops") or [None]
    return t[0] if result.get("status") == "ok" and t[0] is not None and t[0] > 0 else None


def config(c):
    return (c["op"], c["head_dim_qk"], c["heads_q"], c["heads_kv"], c["dtype"])


def implementations(cases):
    seen = []
    for _, results in cases.values():
        for impl in results:
            if impl not in seen:
                seen.append(impl)
    return sorted(seen, key=lambda i: (not i.startswith("polyhead"), i))


def style(impl, index):
    ours = impl.startswith("polyhead")
    return {"linewidth": 2.4 if ours else 1.4, "linestyle": "-" if ours else "--",
            "marker": "o" if ours else "s", "markersize": 4, "color": f"C{index}"}


def plot_seqlen(plt, cases, impls, out, title):
    fwd = [(c, r) for c, r in cases.values()
           if c["op"] == "fwd" and "-keep" not in c["name"] and "-buckets" not in c["name"]]
    if not fwd:
        return None
    common = collections.Counter(config(c) for c, _ in fwd).most_common(1)[0][0]
    by_pattern = collections.OrderedDict()
    for c, r in fwd:
        if config(c) == common:
            by_pattern.setdefault(c["pattern"], []).append((c, r))
    values = [ok_tflops(x) for pts in by_pattern.values() for _, r in pts for x in r.values()]
    values = [v for v in values if v]
    giga = bool(values) and max(values) < 1.0
    scale, unit = (1e3, "GFLOP/s") if giga else (1.0, "TFLOP/s")
    n = len(by_pattern)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (pattern, pts) in zip(axes.flat, by_pattern.items()):
        for index, impl in enumerate(impls):
            xy = sorted((c["seqlen_k"], ok_tflops(r[impl]) * scale) for c, r in pts
                        if impl in r and ok_tflops(r[impl]))
            if xy:
                ax.plot([x for x, _ in xy], [y for _, y in xy], label=impl, **style(impl, index))
        ax.set_xscale("log", base=2)
        ax.set_title(pattern, fontsize=10)
        ax.set_xlabel("sequence length", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    op, d, hq, hkv, dt = common
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(f"{title}forward, D = {d}, {hq}/{hkv} heads, {dt}: {unit} (mask-aware FLOPs)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    path = os.path.join(out, "tflops_vs_seqlen.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_density(plt, cases, impls, out, title):
    full = {}
    for c, r in cases.values():
        if c["op"] == "fwd" and c["pattern"] == "full":
            full[(config(c), c["seqlen_k"])] = r
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    any_point = False
    densities = []
    for index, impl in enumerate(impls):
        xs, ys = [], []
        for c, r in cases.values():
            base = full.get((config(c), c["seqlen_k"]))
            if (c["op"] != "fwd" or c["pattern"] == "full" or base is None or impl not in r
                    or impl not in base or not c.get("density") or c["density"] >= 0.999):
                continue
            if not (ok_tflops(r[impl]) and ok_tflops(base[impl])):
                continue
            xs.append(c["density"])
            ys.append(base[impl]["median_ms"] / r[impl]["median_ms"])
        if xs:
            any_point = True
            densities += xs
            ax.scatter(xs, ys, label=impl, s=22 if impl.startswith("polyhead") else 14,
                       color=f"C{index}", marker="o" if impl.startswith("polyhead") else "s")
    if not any_point:
        plt.close(fig)
        return None
    lo, hi = min(densities), max(densities)
    grid = [lo * (hi / lo) ** (k / 50) for k in range(51)] if hi > lo else [lo]
    ax.plot(grid, [1 / x for x in grid], color="gray", linestyle=":", label="ideal: 1 / density")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mask density (visible pairs / all pairs)")
    ax.set_ylabel("time on the full mask / time on this mask")
    ax.set_title(f"{title}sparse masks: speedup over the same implementation's dense run",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "speedup_vs_density.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_bench: matplotlib is not installed; no plots (the tables stand alone)")
        return 0
    cases = load(args.results)
    impls = implementations(cases)
    os.makedirs(args.out, exist_ok=True)
    title = args.title + ": " if args.title else ""
    for path in (plot_seqlen(plt, cases, impls, args.out, title),
                 plot_density(plt, cases, impls, args.out, title)):
        if path:
            print(f"plot_bench: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
