#!/usr/bin/env python3
"""End to end test of the benchmark pipeline on the CPU (label cli):

    bench_pipeline.py POLYHEAD_EXE REPO_ROOT WORK_DIR

1. `polyhead bench --grid tests/cli/bench_grid.json --verify --json`: every forward case is
   verified ([OK]) and timed, the backward case is recorded unsupported (-2), the case too large
   for memory out of memory (-1); the JSON holds the figures with the mask-aware FLOP count.
2. `polyhead bench --export`: the peers' description of every case; with numpy,
   bench/anchors/grid_masks.py finds it consistent with polyhead's pair counts, block maps and
   LongCA-bench's definitions.
3. bench/anchors/grid_peers.py: without torch it exits 0 and writes nothing (CI has no torch).
4. `polyhead bench compare` of polyhead's results with a peer's file made here: ratios, OOM and
   n/a cells, the Markdown table and the merged JSON.
5. bench/plots/plot_bench.py: the two PNGs where matplotlib is installed.
"""
import json
import os
import subprocess
import sys


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return p.returncode, p.stdout, p.stderr


def expect(cond, what, detail=""):
    if not cond:
        print(f"FAILED: {what}\n{detail}")
        sys.exit(1)
    print(f"ok: {what}")


def main():
    exe, root, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    grid = os.path.join(root, "tests/cli/bench_grid.json")
    ours = os.path.join(work, "polyhead.json")

    # 1. bench with --verify and --json.
    rc, out, err = run([exe, "bench", "--grid", grid, "--verify", "--max-seconds", "0.05",
                        "--json", ours])
    expect(rc == 0, "bench --verify exits 0", out[-3000:] + err[-2000:])
    expect("[FAIL]" not in out and out.count("[OK]") >= 18, "every forward case verified [OK]",
           out[-3000:])
    expect("-2 unsupported (bwd)" in out, "backward recorded as unsupported (-2)")
    expect("-1 oom (fwd)" in out, "the oversized case recorded as out of memory (-1)")
    expect("polyhead bench: [1/" in err, "a progress line per case on stderr", err[:500])
    doc = json.load(open(ours))
    expect(doc["format"] == "polyhead-bench/1" and doc["implementations"] == ["polyhead-cpu"],
           "result file format and implementation")
    by_name = {c["name"]: c for c in doc["cases"]}
    expect(len(by_name) == 22, f"22 cases in the result file (got {len(by_name)})")
    for c in doc["cases"]:
        r = c["results"]["polyhead-cpu"]
        if c["op"] == "bwd":
            expect(r["status"] == "unsupported" and r["tflops"] == [-2, -2, -2],
                   f"{c['name']}: -2 with a reason", json.dumps(r))
            expect(c["flops"] == 2.5 * 2 * 128 * c["pairs"], f"{c['name']}: bwd FLOPs 2.5x")
            continue
        if c["seqlen_k"] > 1 << 20:
            expect(r["status"] == "oom" and r["tflops"] == [-1, -1, -1],
                   f"{c['name']}: -1 (out of memory)", json.dumps(r))
            continue
        expect(r["status"] == "ok" and r["tflops"][0] > 0, f"{c['name']}: timed", json.dumps(r))
        expect(r["p20_ms"] <= r["median_ms"] <= r["p80_ms"], f"{c['name']}: quantiles ordered")
        expect(c["flops"] == 2 * 128 * c["pairs"] and 0 < c["density"] <= 1,
               f"{c['name']}: mask-aware FLOPs and density")
        expect(r["verify"]["passed"], f"{c['name']}: verified", json.dumps(r["verify"]))
        expect(r["peak_mem_bytes"] is None or r["peak_mem_bytes"] > 0, f"{c['name']}: peak memory")
    dense = by_name["full-s256-d64-h4x2-bf16"]
    expect(dense["pairs"] == 4 * 256 * 256, "full mask: Hq * S^2 pairs")
    expect(by_name["causal-s256-d64-h4x2-bf16"]["pairs"] == 4 * 256 * 257 // 2,
           "causal mask: Hq * S (S + 1) / 2 pairs")

    # 2. export, and the masks' consistency where numpy is installed.
    export = os.path.join(work, "export")
    rc, out, err = run([exe, "bench", "--grid", grid, "--export", export])
    expect(rc == 0 and "exported 22 cases" in out, "bench --export", out + err)
    exported = json.load(open(os.path.join(export, "cases.json")))
    expect([c["name"] for c in exported["cases"]] == [c["name"] for c in doc["cases"]],
           "the export lists the same cases")
    kinds = {c["name"]: c["mask"]["kind"] for c in exported["cases"]}
    expect(kinds["causal_document-s256-d64-h4x2-bf16"] == "varlen"
           and kinds["share_question-s256-d64-h4x2-bf16"] == "slices"
           and kinds["qk_sparse-s256-d64-h4x2-bf16"] == "blocks"
           and kinds["moa-s256-d64-h4x2-bf16"] == "heads_window"
           and kinds["dhsa-s256-d64-h4x2-bf16"] == "dynamic", "mask kinds of the export", str(kinds))
    anchors = os.path.join(root, "bench/anchors")
    try:
        import numpy  # noqa: F401
        rc, out, err = run([sys.executable, os.path.join(anchors, "grid_masks.py"), "check", export])
        expect(rc == 0 and "0 inconsistent" in out, "grid_masks check: peers' masks = polyhead's",
               out[-3000:] + err[-2000:])
    except ImportError:
        print("skip: numpy is not installed (grid_masks check)")

    # 3. the peers' script without torch.
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    peers = os.path.join(work, "peers.json")
    if not have_torch:
        rc, out, err = run([sys.executable, os.path.join(anchors, "grid_peers.py"), export,
                            "--json", peers, "--device", "cpu"])
        expect(rc == 0 and not os.path.exists(peers) and "not installed" in out,
               "grid_peers.py skips cleanly without torch", out + err)

    # 4. compare against a made-up peer: half our speed on two cases, OOM and n/a on others.
    fake = {"format": "polyhead-bench/1", "implementations": ["fake-peer"], "grid": "cli-test",
            "machine": {"cpu": "test"}, "cases": []}
    ok_cases = [c for c in doc["cases"] if c["results"]["polyhead-cpu"]["status"] == "ok"]
    for k, c in enumerate(ok_cases[:4]):
        ours_t = c["results"]["polyhead-cpu"]["tflops"][0]
        entry = ({"status": "ok", "median_ms": 1.0, "tflops": [ours_t / 2] * 3} if k < 2 else
                 {"status": "oom", "reason": "test", "tflops": [-1] * 3} if k == 2 else
                 {"status": "unsupported", "reason": "test", "tflops": [-2] * 3})
        fake["cases"].append({"name": c["name"], "pattern": c["pattern"], "op": c["op"],
                              "results": {"fake-peer": entry}})
    fake_path = os.path.join(work, "fake.json")
    json.dump(fake, open(fake_path, "w"))
    md, merged = os.path.join(work, "table.md"), os.path.join(work, "merged.json")
    rc, out, err = run([exe, "bench", "compare", ours, fake_path, "--markdown", md, "--json",
                        merged])
    expect(rc == 0, "bench compare exits 0", out + err)
    rows = [line for line in out.splitlines() if line.rstrip().endswith("2.00x")]
    expect(len(rows) == 2 and "OOM" in out and "n/a" in out,
           "compare: ratios to the best peer, OOM and n/a cells", out)
    expect("geometric mean 2.00x" in out, "compare: the geometric mean over shared cases", out)
    table = open(md).read()
    expect("| case | density | polyhead-cpu | fake-peer | polyhead-cpu / best peer |" in table,
           "compare --markdown writes the table", table[:600])
    m = json.load(open(merged))
    both = [c for c in m["cases"] if len(c["results"]) == 2]
    expect(m["implementations"] == ["polyhead-cpu", "fake-peer"] and len(both) == 4,
           "compare --json merges the implementations per case")

    # 5. plots where matplotlib is installed.
    plots = os.path.join(work, "plots")
    rc, out, err = run([sys.executable, os.path.join(root, "bench/plots/plot_bench.py"), merged,
                        "--out", plots, "--title", "cli test"])
    expect(rc == 0, "plot_bench exits 0", out + err)
    try:
        import matplotlib  # noqa: F401
        for name in ("tflops_vs_seqlen.png", "speedup_vs_density.png"):
            path = os.path.join(plots, name)
            expect(os.path.exists(path) and os.path.getsize(path) > 10000, f"plot {name}")
    except ImportError:
        expect("matplotlib is not installed" in out, "plot_bench says it has no matplotlib")
    print("bench pipeline: all checks passed")


if __name__ == "__main__":
    main()
