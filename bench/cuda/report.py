#!/usr/bin/env python3
"""Merges cuda_fwd_bench's JSON with the peers' (bench/anchors/torch_sdpa.py) into one JSON and
a Markdown table with ratios and the issue's targets.

    python3 bench/cuda/report.py ours.json peers.json out_prefix [commit C] [date D] [mma F]

`mma F` adds a column with the mma.sync kernel family's run of the same cases (cuda_fwd_bench
--family mma), so the table shows what the Hopper kernel gained.
"""
import json
import re
import sys


def item_costs(ours, by_name):
    """The cost of a work item: the items_d128_k* cases (cuda_fwd_cases.h) hold one 128-row
    query tile per item over t key tiles of 128; a least-squares line of time against t, per SM
    (items / SMs items each), splits it into a fixed cost per item and a cost per key tile."""
    cases = [(r, int(r["name"].rsplit("_k", 1)[1]) // 128) for r in ours["results"]
             if r["name"].startswith("items_d128_k") and r.get("flops")]
    sms = ours.get("sms") or 132
    lines = []
    for label, key in (("ours", None), ("FA2", "fa2"), ("cuDNN", "cudnn")):
        pts = []
        for r, t in cases:
            tflops = r.get("tflops") if key is None else by_name.get(r["name"], {}).get(key)
            if tflops:
                items = r["flops"] / (2 * 256 * 128 * 128 * t)  # 2 * (Dqk + Dv) * 128 * 128t each
                us_per_item = r["flops"] / (tflops * 1e12) * 1e6 / (items / sms)
                pts.append((t, us_per_item))
        if len(pts) < 2:
            continue
        n = len(pts)
        mt = sum(t for t, _ in pts) / n
        mu = sum(u for _, u in pts) / n
        slope = sum((t - mt) * (u - mu) for t, u in pts) / sum((t - mt) ** 2 for t, _ in pts)
        fixed = mu - slope * mt
        lines.append(f"- item cost, {label}: {fixed:.2f} us per item + {slope:.2f} us per 128-key "
                     f"tile (per SM, {sms} SMs; fit over {n} items_d128 cases)")
    return lines


def main():
    ours_path, peers_path, prefix = sys.argv[1:4]
    extra = dict(zip(sys.argv[4::2], sys.argv[5::2]))
    mma_path = extra.pop("mma", None)
    mma_by = {}
    if mma_path:
        try:
            mma_by = {r["name"]: r for r in json.load(open(mma_path))["results"]}
        except (OSError, ValueError):
            mma_by = {}
    ours = json.load(open(ours_path))
    try:
        peers = json.load(open(peers_path))
    except (OSError, ValueError):
        peers = {"results": []}
    by_name = {r["name"]: r for r in peers.get("results", [])}
    ours_by = {r["name"]: r for r in ours["results"]}
    rows, merged = [], []

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "-"

    def num(x):
        return f"{x:.1f}" if x else "-"

    def tb(x):
        return f"{x:.2f}" if x else "-"

    for r in ours["results"]:
        p = by_name.get(r["name"], {})
        t = r["tflops"] or None
        m = mma_by.get(r["name"], {}).get("tflops") or None
        note = r.get("note", "")
        if "sm_mhz" in r:  # NVML samples during our timed calls (bench/cuda/gpu_sampler.h)
            note += f"{'; ' if note else ''}{r['sm_mhz']:.0f} MHz, {r['watts']:.0f} W"
        rows.append(f"| {r['name']} | {num(t)} | {num(m)} | {num(p.get('fa2'))} | {num(p.get('cudnn'))} | "
                    f"{num(p.get('flex'))} | {ratio(t, p.get('fa2'))} | {ratio(t, p.get('cudnn'))} | "
                    f"{ratio(t, p.get('flex'))} | {note} |")
        merged.append({**r, "mma_sync_tflops": m,
                       **{"peer_" + k: v for k, v in p.items() if k != "name"}})

    targets = []
    dense = [(r["name"], r["tflops"], by_name.get(r["name"], {}).get("fa2"))
             for r in ours["results"] if r["name"].startswith(("dense", "causal", "gqa"))]
    met = [n for n, t, f in dense if t and f and t >= f]
    missed = [f"{n} ({t / f:.2f}x)" for n, t, f in dense if t and f and t < f]
    targets.append(f"- dense and causal >= 1.0x FA2: {len(met)} of {len(met) + len(missed)} cases"
                   + (f"; below: {', '.join(missed)}" if missed else ""))
    for hd in (128, 64):
        name = f"window1024_causal_d{hd}_s16384"
        w = ours_by.get(name, {}).get("tflops")
        d = ours_by.get(f"dense_d{hd}_s16384", {}).get("tflops")
        if not (w and d):
            continue
        line = (f"- window 1024 at 16k, d{hd}: {w:.1f} TFLOP/s = {100 * w / d:.0f}% of our dense "
                f"d{hd} 16k ({d:.1f})" + ("; target >= 85%" if hd == 128 else ""))
        # The best peer's own ratio: cuDNN's window (through its frontend) against its dense.
        cw = by_name.get(name, {}).get("cudnn")
        cd = by_name.get(f"dense_d{hd}_s16384", {}).get("cudnn")
        if cw and cd:
            line += (f". cuDNN: {cw:.1f} = {100 * cw / cd:.0f}% of its dense ({cd:.1f}); "
                     f"ours {w / cw:.2f}x cuDNN's window")
        targets.append(line)
    for r in ours["results"]:
        if r["name"].startswith("decode") and r.get("tflops"):
            peer = by_name.get(r["name"], {})
            # One query row per head: 4 Hq Sk D FLOPs against 4 Hkv Sk D bytes of K and V
            # (bf16), so TB/s = TFLOP/s * Hkv / Hq.
            g = re.search(r"gqa(\d+)x(\d+)", r["name"])
            tbs = ""
            if g:
                f = int(g.group(2)) / int(g.group(1))
                tbs = (f" (K, V read at {r['tflops'] * f:.2f} TB/s; FA2 "
                       f"{tb((peer.get('fa2') or 0) * f)}, cuDNN {tb((peer.get('cudnn') or 0) * f)})")
            targets.append(f"- {r['name']}: {r['tflops']:.1f} TFLOP/s{tbs}, {ratio(r['tflops'], peer.get('fa2'))} "
                           f"FA2, {ratio(r['tflops'], peer.get('cudnn'))} cuDNN (no target in issue 4)")
    na = ours_by.get("na2d_17x17_grid128_d128", {})
    na_flex = by_name.get("na2d_17x17_grid128_d128", {}).get("flex")
    if na.get("tflops"):
        targets.append(f"- NA-2D 17x17: {na['tflops']:.1f} TFLOP/s"
                       + (f" = {na['tflops'] / na_flex:.1f}x FlexAttention ({na_flex:.1f}); target >= 5x"
                          if na_flex else ""))
    else:
        targets.append(f"- NA-2D 17x17: not run ({na.get('note', 'missing')})")

    targets += item_costs(ours, by_name)

    head = (f"# cuda forward, {ours.get('gpu')} ({', '.join(f'{k} {v}' for k, v in extra.items())})\n\n"
            f"bf16, TFLOP/s = 2 * Hq * (Dqk + Dv) * unmasked pairs / median time of "
            f"{ours.get('repeats')} calls (L2 flushed). Peers: PyTorch {peers.get('torch', '?')} SDPA "
            f"FLASH_ATTENTION (FA2) and CUDNN_ATTENTION (cuDNN {peers.get('cudnn', '?')}), FlexAttention.\n\n"
            "`ours` is the dispatcher's choice on cc 9.0 (the warp-specialized TMA kernel where "
            "its tile's kAutoMinKeys allows, src/cuda/fwd/tile_size.h; else the wgmma kernel), "
            "`mma.sync` the FlashAttention-2-style kernel family on the same cases. The note gives "
            "the mean SM clock and board power during our timed calls, where NVML was there to "
            "sample them.\n\n"
            "| case | ours | mma.sync | FA2 | cuDNN | Flex | /FA2 | /cuDNN | /Flex | note |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    md = head + "\n".join(rows) + "\n\nTargets:\n\n" + "\n".join(targets) + "\n"
    open(prefix + ".md", "w").write(md)
    json.dump({"gpu": ours.get("gpu"), **extra, "repeats": ours.get("repeats"),
               "torch": peers.get("torch"), "cudnn": peers.get("cudnn"), "results": merged},
              open(prefix + ".json", "w"), indent=2)
    print(md)


if __name__ == "__main__":
    main()
