#!/usr/bin/env python3
"""Times polyhead's peers on the cases of `polyhead bench --export DIR`: the same grid, the exact
same masks and the same FLOP counts, written as a polyhead-bench/1 result file that
`polyhead bench compare` sets beside polyhead's.

    python3 bench/anchors/grid_peers.py EXPORT_DIR --json peers.json [--device cuda|cpu]
        [--peers sdpa-flash,sdpa-cudnn,flex] [--budget-s 200] [--repeats N] [--max-seconds S]

Implementations (a case's "peers" in the grid narrows them; the rest record -2 with a reason):

  torch-sdpa-flash  PyTorch's FlashAttention-2: SDPA with the FLASH_ATTENTION backend for no mask
                    and causal; torch.ops.aten._flash_attention_forward (the same kernels' varlen
                    entry) for packed documents, sliding windows and bottom-right causal decode
  torch-sdpa-cudnn  SDPA with the CUDNN_ATTENTION backend: no mask and causal (Sq = Sk)
  torch-flex        FlexAttention (torch.compile), its BlockMask built from polyhead's exported
                    block map (128 x 128 tiles: skipped / partial / full) with a mask_mod that
                    evaluates the same rule on partial tiles (grid_masks.py)
  torch-sdpa-cpu    (--device cpu) SDPA on the CPU: is_causal for no mask / causal, a dense
                    boolean attn_mask for the other static masks up to 2^26 elements

Method (as polyhead's bench): inputs random bf16 in polyhead's [B, S, H, D] layout (SDPA gets
[B, H, S, D] views); one warm-up call (FlexAttention compiles there), then timed calls, on the GPU
between CUDA events after a 512 MiB fill that flushes L2; median and 20%/80% quantiles; at most
--repeats calls and at least 3, stopping once --max-seconds have passed. Peak memory: PyTorch's
max_memory_allocated over the warm-up and timed calls (inputs included). Out of memory records -1;
a mask or shape the peer cannot run records -2 with the reason. Backward cases time
out.backward(dO) after a forward pass.

Without torch the script says so and exits 0 without writing (CI machines have no torch).
GPU order: every SDPA figure first, then FlexAttention (whose compiles dominate), so that a
--budget-s that runs out costs FlexAttention figures first; cases past the budget record -2
"time budget".
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grid_masks  # noqa: E402

GPU_PEERS = ("sdpa-flash", "sdpa-cudnn", "flex")
IMPL = {"sdpa-flash": "torch-sdpa-flash", "sdpa-cudnn": "torch-sdpa-cudnn", "flex": "torch-flex",
        "sdpa-cpu": "torch-sdpa-cpu"}
FLEX_TILE = 128


class Unsupported(Exception):
    """The peer cannot express this case (recorded as -2 with the message)."""


def quantiles(times):
    t = np.sort(np.asarray(times, dtype=np.float64))
    return [float(np.quantile(t, q)) for q in (0.5, 0.2, 0.8)]


def first_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def is_oom(torch, e):
    return isinstance(e, getattr(torch.cuda, "OutOfMemoryError", ())) or "out of memory" in str(e)


class Runner:
    def __init__(self, torch, args):
        self.torch, self.args = torch, args
        self.device = args.device
        self.deadline = time.monotonic() + args.budget_s
        self.flush = (torch.empty(512 << 20, dtype=torch.uint8, device="cuda")
                      if self.device == "cuda" else None)
        self.inputs_key, self.inputs = None, None
        self.flex = None

    # -- inputs ---------------------------------------------------------------------------------

    def qkv(self, case, grad):
        torch = self.torch
        dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[case["dtype"]]
        key = (case["batch"], case["seqlen_q"], case["seqlen_k"], case["heads_q"], case["heads_kv"],
               case["head_dim_qk"], case["head_dim_v"], case["dtype"])
        if key != self.inputs_key:
            self.inputs = None
            gen = torch.Generator(device=self.device).manual_seed(0)
            b, sq, sk, hq, hkv, dqk, dv, _ = key
            mk = lambda *shape: torch.randn(*shape, device=self.device, dtype=dt, generator=gen)
            self.inputs = (mk(b, sq, hq, dqk), mk(b, sk, hkv, dqk), mk(b, sk, hkv, dv))
            self.inputs_key = key
        q, k, v = self.inputs
        if grad:
            q, k, v = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
        return q, k, v

    # -- timing ---------------------------------------------------------------------------------

    def timed(self, fn, case):
        torch, args = self.torch, self.args
        repeats = case.get("repeats") or args.repeats
        cuda = self.device == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        fn()  # warm-up (and FlexAttention's compilation)
        if cuda:
            torch.cuda.synchronize()
        times, start_wall = [], time.monotonic()
        while len(times) < repeats and not (len(times) >= 3 and
                                            time.monotonic() - start_wall > args.max_seconds):
            if cuda:
                self.flush.fill_(len(times) & 0xFF)
                t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                t0.record()
                fn()
                t1.record()
                t1.synchronize()
                times.append(t0.elapsed_time(t1) * 1e-3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() if cuda else None
        return times, peak

    def measure(self, case, peer):
        """One result entry (the polyhead-bench/1 'results' value)."""
        torch = self.torch
        if time.monotonic() > self.deadline:
            return {"status": "unsupported", "reason": "time budget of the peers' run spent",
                    "tflops": [-2, -2, -2]}
        if case["op"] == "bwd" and not case.get("flops"):
            return {"status": "unsupported", "reason": "no FLOP count", "tflops": [-2, -2, -2]}
        try:
            fn = self.build(case, peer)
            times, peak = self.timed(fn, case)
        except Unsupported as e:
            return {"status": "unsupported", "reason": str(e), "tflops": [-2, -2, -2]}
        except Exception as e:  # noqa: BLE001 - a peer's failure is a result, not a crash
            oom = is_oom(torch, e)
            if self.device == "cuda":
                try:
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
                except Exception:  # noqa: BLE001 - a sticky CUDA error shows in later cases
                    pass
            return {"status": "oom" if oom else "error", "reason": first_line(e),
                    "tflops": [-1, -1, -1] if oom else [-2, -2, -2]}
        med, p20, p80 = quantiles(times)
        flops = case["flops"]
        entry = {"status": "ok", "runs": len(times), "median_ms": med * 1e3, "p20_ms": p20 * 1e3,
                 "p80_ms": p80 * 1e3,
                 "tflops": [flops / t * 1e-12 for t in (med, p20, p80)],
                 "peak_mem_bytes": peak}
        if case["op"] == "decode" or case["seqlen_q"] == 1:
            kv = (case["batch"] * case["seqlen_k"] * case["heads_kv"]
                  * (case["head_dim_qk"] + case["head_dim_v"]) * 2)
            entry["kv_gbps"] = kv / med * 1e-9
        return entry

    # -- the implementations --------------------------------------------------------------------

    def build(self, case, peer):
        kind = case["mask"]["kind"]
        if kind in ("dynamic", "other"):
            raise Unsupported("data-dependent selection (computed inside polyhead); no peer runs it")
        if case["flops"] is None:
            raise Unsupported("no FLOP count for this mask")
        bwd = case["op"] == "bwd"
        if peer in ("sdpa-flash", "sdpa-cudnn", "sdpa-cpu"):
            return self.build_sdpa(case, peer, bwd)
        if peer == "flex":
            return self.build_flex(case, bwd)
        raise Unsupported(f"unknown peer {peer}")

    def sdpa_mask(self, case):
        """'none' / 'causal' for SDPA's is_causal, else None."""
        m = case["mask"]
        square = case["seqlen_q"] == case["seqlen_k"]
        if m["kind"] == "none":
            return "none"
        if (m["kind"] == "window" and m["left"] == -1 and m["right"] == 0 and m["sink"] == 0
                and (square or m["top_left"])):
            return "causal"
        return None

    def build_sdpa(self, case, peer, bwd):
        torch = self.torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
        simple = self.sdpa_mask(case)
        gqa = case["heads_q"] != case["heads_kv"]
        q, k, v = self.qkv(case, bwd)
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        if peer == "sdpa-cpu":
            attn_mask = None
            if simple is None:
                attn_mask = self.dense_bool_mask(case)
            call = lambda: F.scaled_dot_product_attention(
                qt, kt, vt, attn_mask=attn_mask, is_causal=simple == "causal", enable_gqa=gqa)
            return self.with_backward(call, bwd, q)
        backend = SDPBackend.FLASH_ATTENTION if peer == "sdpa-flash" else SDPBackend.CUDNN_ATTENTION
        if simple is not None:
            def call():
                with sdpa_kernel([backend]):
                    return F.scaled_dot_product_attention(qt, kt, vt, is_causal=simple == "causal",
                                                          enable_gqa=gqa)
            return self.with_backward(call, bwd, q)
        if peer == "sdpa-cudnn":
            raise Unsupported("SDPA's cuDNN backend takes no mask but causal (Sq = Sk) here")
        return self.build_flash_varlen(case, bwd, q, k, v)

    def build_flash_varlen(self, case, bwd, q, k, v):
        """FlashAttention-2's varlen entry: packed documents, windows, bottom-right causal."""
        torch = self.torch
        m = case["mask"]
        if bwd:
            raise Unsupported("backward through the varlen entry is not wired here")
        left, right, causal = -1, -1, False
        b, sq, sk = case["batch"], case["seqlen_q"], case["seqlen_k"]
        dev = self.device
        if m["kind"] == "varlen":
            cu = torch.tensor(grid_masks.load_npy(self.args.export, m["cu_seqlens"]),
                              dtype=torch.int32, device=dev)
            cu_q = cu_k = cu
            lens = (cu[1:] - cu[:-1])
            max_q = max_k = int(lens.max())
            causal = m["causal"]
        elif m["kind"] == "window" and m["sink"] == 0 and not m["top_left"]:
            cu_q = torch.arange(0, (b + 1) * sq, sq, dtype=torch.int32, device=dev)
            cu_k = torch.arange(0, (b + 1) * sk, sk, dtype=torch.int32, device=dev)
            max_q, max_k = sq, sk
            left, right = m["left"], m["right"]
            causal = right == 0
        else:
            raise Unsupported("FlashAttention-2 expresses no mask, causal, sliding windows and "
                              f"packed documents, not {m['kind']}")
        q3, k3, v3 = (x.reshape(-1, x.shape[2], x.shape[3]) for x in (q, k, v))
        op = torch.ops.aten._flash_attention_forward
        windowed = left != -1 or (right != -1 and not causal)
        if windowed:
            return lambda: op(q3, k3, v3, cu_q, cu_k, max_q, max_k, 0.0, causal, False,
                              window_size_left=left, window_size_right=right)[0]
        return lambda: op(q3, k3, v3, cu_q, cu_k, max_q, max_k, 0.0, causal, False)[0]

    def with_backward(self, call, bwd, q):
        if not bwd:
            return call
        torch = self.torch
        out = call()
        grad = torch.randn_like(out)
        return lambda: out.backward(grad, retain_graph=True)

    def dense_bool_mask(self, case):
        torch = self.torch
        groups = grid_masks.head_groups(case, self.args.export)
        sq, sk = case["seqlen_q"], case["seqlen_k"]
        if sq * sk * len(groups) > (1 << 26):
            raise Unsupported("a dense attn_mask of this size is too large for the CPU peer")
        dense = {g: grid_masks.dense_mask(case, self.args.export, g) for g in groups}
        if len(groups) == 1:
            return torch.from_numpy(dense[groups[0]])[None, None]
        stack = np.stack([dense[grid_masks.representative(case, self.args.export, h)]
                          for h in range(case["heads_q"])])
        return torch.from_numpy(stack)[None]

    def build_flex(self, case, bwd):
        torch = self.torch
        from torch.nn.attention.flex_attention import BlockMask, flex_attention
        if self.flex is None:
            # Every shape and mask compiles its own kernel; past dynamo's default limit of 8
            # recompilations it would fall back to eager FlexAttention, which materializes the
            # scores (minutes and out of memory at these lengths).
            import torch._dynamo
            for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                         "accumulated_recompile_limit"):
                if hasattr(torch._dynamo.config, name):
                    setattr(torch._dynamo.config, name, 4096)
            self.flex = torch.compile(flex_attention, dynamic=False)
        bm = case.get("blockmap")
        if not bm:
            raise Unsupported("no block map exported for this case (too large)")
        if bm["block"] != FLEX_TILE:
            raise Unsupported(f"block map tile {bm['block']} is not FlexAttention's {FLEX_TILE}")
        sq, sk, hq = case["seqlen_q"], case["seqlen_k"], case["heads_q"]
        tiles = torch.from_numpy(grid_masks.load_npy(self.args.export, bm["file"])).to(self.device)
        head_group = torch.tensor(bm["head_group"], dtype=torch.long, device=self.device)
        per_head = int(tiles.shape[0]) > 1
        tiles = tiles[head_group] if per_head else tiles  # [H or 1, Qt, Kt]
        partial, full = tiles == 1, tiles == 2

        def ordered(sel):
            num = sel.sum(-1).to(torch.int32)
            idx = torch.argsort((~sel).to(torch.int8), dim=-1, stable=True).to(torch.int32)
            return num[None], idx[None]

        kv_num, kv_idx = ordered(partial)
        full_num, full_idx = ordered(full)
        mask_mod = self.mask_mod(case)
        block_mask = BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx,
                                              BLOCK_SIZE=FLEX_TILE, mask_mod=mask_mod,
                                              seq_lengths=(sq, sk))
        q, k, v = self.qkv(case, bwd)
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        gqa = hq != case["heads_kv"]
        call = lambda: self.flex(qt, kt, vt, block_mask=block_mask, enable_gqa=gqa)
        return self.with_backward(call, bwd, q)

    def mask_mod(self, case):
        """The element rule on partial tiles, from the same rules as grid_masks.py."""
        torch = self.torch
        dev = self.device
        m = case["mask"]
        iv = grid_masks.intervals_for(case, self.args.export)
        if iv is not None:
            sk = case["seqlen_k"]
            lo = torch.from_numpy(np.minimum(iv.lo, sk).astype(np.int32)).to(dev)
            hi = torch.from_numpy(iv.hi.astype(np.int32)).to(dev)
            hg = torch.from_numpy(iv.head_group).to(dev)
            slots = int(lo.shape[1])

            def intervals_mod(b, h, q_idx, kv_idx):
                g = hg[h]
                ok = (kv_idx >= lo[g, 0, q_idx]) & (kv_idx <= hi[g, 0, q_idx])
                for s in range(1, slots):
                    ok = ok | ((kv_idx >= lo[g, s, q_idx]) & (kv_idx <= hi[g, s, q_idx]))
                return ok
            return intervals_mod
        if m["kind"] == "na":
            return lambda b, h, q_idx, kv_idx: grid_masks.na_allowed(torch, m, q_idx, kv_idx)
        if m["kind"] == "s2":
            return lambda b, h, q_idx, kv_idx: grid_masks.s2_allowed(torch, m, case, h, q_idx,
                                                                      kv_idx)
        if m["kind"] == "blocks":
            bits = torch.from_numpy(grid_masks.load_npy(self.args.export, m["bits"]) != 0).to(dev)
            bq, bk, rows = m["block_q"], m["block_k"], int(bits.shape[0])
            if rows > 1:
                return lambda b, h, q_idx, kv_idx: bits[h, q_idx // bq, kv_idx // bk]
            return lambda b, h, q_idx, kv_idx: bits[0, q_idx // bq, kv_idx // bk]
        raise Unsupported(f"no FlexAttention mask_mod for {m['kind']}")


def finite(x):
    """NaN and infinities as null (strict JSON, which polyhead's reader expects)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if hasattr(x, "item"):  # numpy / torch scalars
        return finite(x.item())
    return x


def environment(torch, device):
    import platform
    env = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
    if device == "cuda":
        env["device"] = torch.cuda.get_device_name()
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", help="directory written by polyhead bench --export")
    ap.add_argument("--json", required=True, help="result file to write (polyhead-bench/1)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--peers", default=None,
                    help="comma-separated peers (default: sdpa-flash,sdpa-cudnn,flex on cuda; "
                         "sdpa-cpu on cpu)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=2.0)
    ap.add_argument("--budget-s", type=float, default=1e9,
                    help="wall-clock budget of the whole run; later cases record -2")
    ap.add_argument("--case", default="", help="only cases whose name contains this")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("grid_peers: torch is not installed here; no peer figures (not an error)")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("grid_peers: torch sees no GPU; use --device cpu")
        return 0
    import warnings
    warnings.filterwarnings("ignore")
    doc = grid_masks.load_export(args.export)
    peers = (args.peers.split(",") if args.peers
             else list(GPU_PEERS) if args.device == "cuda" else ["sdpa-cpu"])
    cases = [c for c in doc["cases"] if args.case in c["name"]]
    runner = Runner(torch, args)
    results = {c["name"]: {} for c in cases}
    # SDPA first, FlexAttention last (its compilations are the slow part).
    for peer in sorted(peers, key=lambda p: p == "flex"):
        for i, case in enumerate(cases):
            wanted = case.get("peers")
            if wanted is not None and peer not in wanted and peer != "sdpa-cpu":
                continue
            t0 = time.monotonic()
            entry = runner.measure(case, peer)
            results[case["name"]][IMPL[peer]] = entry
            value = entry["tflops"][0]
            shown = (f"{value:9.2f} TFLOP/s" if entry["status"] == "ok"
                     else f"{entry['status']}: {entry.get('reason', '')[:90]}")
            print(f"grid_peers [{IMPL[peer]} {i + 1}/{len(cases)}] {case['name']}: {shown} "
                  f"({time.monotonic() - t0:.1f} s)", flush=True)
    out_cases = []
    keep = ("name", "pattern", "op", "dtype", "batch", "seqlen_q", "seqlen_k", "heads_q",
            "heads_kv", "head_dim_qk", "head_dim_v", "pairs", "density", "flops")
    for case in cases:
        entry = {k: case[k] for k in keep}
        entry["mask"] = case["mask"]["kind"]
        entry["varlen"] = case["mask"]["kind"] == "varlen"
        entry["results"] = results[case["name"]]
        out_cases.append(entry)
    implementations = [IMPL[p] for p in sorted(peers, key=lambda p: p == "flex")]
    with open(args.json, "w") as f:
        json.dump(finite({"format": "polyhead-bench/1", "implementations": implementations,
                          "grid": doc.get("grid", ""),
                          "commit": os.environ.get("POLYHEAD_COMMIT", ""),
                          "machine": environment(torch, args.device),
                          "settings": {"repeats": args.repeats, "max_seconds": args.max_seconds},
                          "cases": out_cases}), f, indent=1, allow_nan=False)
    print(f"grid_peers: wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
