#!/usr/bin/env python3
"""Times the peers of the cuda backend's forward pass on the cases of bench/cuda/cuda_fwd_cases.h.

    python3 bench/anchors/torch_sdpa.py --cases cases.json --json peers.json [--repeats N]

cases.json is written by `cuda_fwd_bench --cases` (same shapes, same FLOP counts). For each case:
PyTorch SDPA with the FLASH_ATTENTION backend (FlashAttention-2) and the CUDNN_ATTENTION backend
on dense and causal cases (on the causal sliding window, cuDNN through its frontend's graph API,
bench/anchors/cudnn_fe.py, when that module is present), and FlexAttention (torch.compile)
where --flex selects the case (sliding window, 2-D neighborhood and the D=128 16k dense cases by
default). Tensors are bf16 in the [B, S, H, D] memory layout polyhead uses, passed to SDPA as
[B, H, S, D] views. Method as in cuda_fwd_bench: warm-up, then N timed calls between CUDA events
after an L2 flush, median reported; TFLOP/s from the case's FLOP count (2 * Hq * (Dqk + Dv) *
unmasked pairs).
"""
import argparse
import json
import statistics
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import cudnn_fe

FLEX_DEFAULT = ("window", "na2d", "dense_d128_s16384", "causal_d128_s16384")


def timed(fn, repeats, flush):
    fn()
    torch.cuda.synchronize()
    times = []
    for r in range(repeats):
        flush.fill_(r & 0xFF)
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def cudnn_window(module, q, k, v, window, flops, repeats, flush):
    """(TFLOP/s, note) of cuDNN's causal sliding window through its frontend, or (None, why)."""
    if module is None:
        return None, "no cuDNN frontend module (scripts/prepare-device-deps stages it)"
    try:
        attn = cudnn_fe.WindowAttention(module, q, k, v, window)
        err = attn.max_error()
        if not err < 0.03:  # bf16 output: a convention mismatch gives O(1) errors
            return None, f"cuDNN frontend window result differs from ours (max error {err:.3g})"
        ms = timed(attn, repeats, flush)
        return flops / (ms * 1e-3) / 1e12, (f"cuDNN frontend {module.__version__} graph, "
                                            f"sliding_window_length (max error {err:.2g})")
    except Exception as e:  # a refusal is a result, not a failure
        return None, f"cuDNN frontend: {type(e).__name__}: {str(e).splitlines()[0][:160]}"


def na_mask_mod(grid, kernel):
    # NATTEN's non-causal rule per dimension: the window [c - k//2, c + k//2] around the query
    # coordinate clamped to [k//2, grid - 1 - k//2] (shifted, not truncated, at the edges).
    half = kernel // 2

    def dim_ok(qc, kc):
        c = torch.clamp(qc, half, grid - 1 - half)
        return (kc - c).abs() <= half

    def mask_mod(b, h, q_idx, kv_idx):
        return dim_ok(q_idx // grid, kv_idx // grid) & dim_ok(q_idx % grid, kv_idx % grid)

    return mask_mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--flex", default=",".join(FLEX_DEFAULT),
                    help="comma-separated substrings of case names to run through FlexAttention")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    cases = json.load(open(args.cases))
    flex_keys = [s for s in args.flex.split(",") if s]
    flush = torch.empty(512 << 20, dtype=torch.uint8, device="cuda")
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    flex = torch.compile(flex_attention, dynamic=False)
    cudnn_fe_module = cudnn_fe.load()

    results = []
    print(f"{'case':34s} {'FA2':>8s} {'cuDNN':>8s} {'Flex':>8s}  (TFLOP/s)", flush=True)
    for c in cases:
        B, S, Hq, Hkv, D = c["batch"], c["seqlen"], c["heads_q"], c["heads_kv"], c["head_dim"]
        Sq = c.get("seqlen_q") or S  # decode: one query row against S keys
        Dv = c.get("head_dim_v") or D  # MLA prefill: Dv < Dqk
        gen = torch.Generator(device="cuda").manual_seed(0)
        q = torch.randn(B, Sq, Hq, D, device="cuda", dtype=torch.bfloat16, generator=gen).transpose(1, 2)
        k = torch.randn(B, S, Hkv, D, device="cuda", dtype=torch.bfloat16, generator=gen).transpose(1, 2)
        v = torch.randn(B, S, Hkv, Dv, device="cuda", dtype=torch.bfloat16, generator=gen).transpose(1, 2)
        flops = c["flops"]
        row = {"name": c["name"]}
        causal = c["kind"] == "causal"
        gqa = Hq != Hkv
        for key, backend in (("fa2", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            if c["kind"] == "window" and key == "cudnn":
                row[key], row[key + "_note"] = cudnn_window(cudnn_fe_module, q, k, v, c["window"],
                                                            flops, args.repeats, flush)
                continue
            if c["kind"] not in ("dense", "causal", "decode"):
                row[key] = None
                row[key + "_note"] = "no window or neighborhood masks in SDPA's fused backends"
                continue
            try:
                with sdpa_kernel([backend]):
                    ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                                      enable_gqa=gqa),
                               args.repeats, flush)
                row[key] = flops / (ms * 1e-3) / 1e12
            except Exception as e:  # a backend refusing a shape is a result, not a failure
                row[key] = None
                row[key + "_note"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        row["flex"] = None
        if any(s in c["name"] for s in flex_keys):
            try:
                if c["kind"] == "causal":
                    mask_mod = lambda b, h, qi, ki: ki <= qi
                elif c["kind"] == "window":
                    w = c["window"]
                    mask_mod = lambda b, h, qi, ki: (ki <= qi) & (qi - ki < w)
                elif c["kind"] == "na2d":
                    mask_mod = na_mask_mod(c["na_grid"], c["na_kernel"])
                else:
                    mask_mod = None
                bm = None
                if mask_mod is not None:
                    bm = create_block_mask(mask_mod, None, None, S, S, device="cuda", _compile=True)
                ms = timed(lambda: flex(q, k, v, block_mask=bm, enable_gqa=gqa), args.repeats, flush)
                row["flex"] = flops / (ms * 1e-3) / 1e12
            except Exception as e:
                row["flex_note"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        fmt = lambda x: f"{x:8.1f}" if x is not None else f"{'-':>8s}"
        print(f"{c['name']:34s} {fmt(row['fa2'])} {fmt(row['cudnn'])} {fmt(row['flex'])}", flush=True)
        results.append(row)
        del q, k, v
    json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
               "cudnn": torch.backends.cudnn.version(), "repeats": args.repeats,
               "cudnn_frontend": getattr(cudnn_fe_module, "__version__", None),
               "results": results}, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    sys.exit(main())
