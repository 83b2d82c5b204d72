#!/usr/bin/env python3
"""End-to-end test of `polyhead attend` against a float64 NumPy oracle.

Writes random .npy inputs, runs `polyhead attend` on several configurations (masks and their
alignment, GQA/MQA, Dqk != Dv, softcap, ALiBi, sinks, varlen, fp16/bf16/float64 inputs,
Fortran order, block-mask files) and compares o and lse with an independent float64
implementation of DESIGN.md section 2, by relative L2 error under the section 6 tolerances.
Then checks the error contract on bad files: exit code 2, one line on stderr.

usage: attend_oracle.py PATH/TO/polyhead
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

TOLERANCE = {"fp32": 1e-5, "fp16": 2e-3, "bf16": 1.6e-2}


def round_bf16(x):
    """Rounds float32 values to bfloat16 (nearest even), returned as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def round_to(x, dtype):
    """The values the engine computes with: inputs rounded to the compute dtype."""
    x32 = np.asarray(x).astype(np.float32)
    if dtype == "fp16":
        return x32.astype(np.float16).astype(np.float64)
    if dtype == "bf16":
        return round_bf16(x32).astype(np.float64)
    return x32.astype(np.float64)


def parse_mask(spec):
    """(allowed(pos, j) -> bool array, top_left) for the mask forms this oracle knows."""
    if spec == "none":
        return (lambda pos, j: np.ones((pos.size, j.size), bool)), False
    kind, _, args = spec.partition(":")
    if kind == "causal":
        top_left = args == "topleft"
        return (lambda pos, j: j[None, :] <= pos[:, None]), top_left
    if kind == "window":
        fields = args.split(",")
        left, right = int(fields[0]), int(fields[1])
        top_left = "topleft" in fields[2:]
        sink = 0
        for f in fields[2:]:
            if f.startswith("sink="):
                sink = int(f[5:])

        def allowed(pos, j):
            p, jj = pos[:, None], j[None, :]
            ok = np.ones((pos.size, j.size), bool)
            if right >= 0:
                ok &= jj <= p + right
            window = ok & ((jj >= p - left) if left >= 0 else True)
            return window | (ok & (jj < sink))  # sinks still obey the right bound

        return allowed, top_left
    raise ValueError("the oracle does not know mask " + spec)


def attention_oracle(q, k, v, cfg):
    """float64 DESIGN.md section 2: q [B,Sq,Hq,D], k [B,Sk,Hkv,D], v [B,Sk,Hkv,Dv]."""
    B, Sq, Hq, D = q.shape
    Sk, Hkv, Dv = k.shape[1], k.shape[2], v.shape[3]
    scale = cfg.get("scale", D ** -0.5)
    softcap = cfg.get("softcap", 0.0)
    alibi, sinks, blocks = cfg.get("alibi"), cfg.get("sinks"), cfg.get("blocks")
    if blocks is not None:
        bits, bq, bk = blocks
        allowed, top_left = None, False
    else:
        allowed, top_left = parse_mask(cfg.get("mask", "none"))
    o = np.zeros((B, Sq, Hq, Dv))
    lse = np.full((B, Hq, Sq), -np.inf)
    i, j = np.arange(Sq), np.arange(Sk)
    pos = i if top_left else i + Sk - Sq
    for b in range(B):
        for h in range(Hq):
            hk = h // (Hq // Hkv)
            s = scale * (q[b, :, h, :] @ k[b, :, hk, :].T)
            if softcap > 0:
                s = softcap * np.tanh(s / softcap)
            if alibi is not None:
                s = s - float(alibi[h]) * np.abs(pos[:, None] - j[None, :])
            if blocks is not None:
                ok = bits[0 if bits.shape[0] == 1 else h][np.ix_(i // bq, j // bk)] != 0
            else:
                ok = allowed(pos, j)
            s = np.where(ok, s, -np.inf)
            m = s.max(axis=1) if Sk > 0 else np.full(Sq, -np.inf)
            sink = float(sinks[h]) if sinks is not None else -np.inf
            m = np.maximum(m, sink)
            live = np.isfinite(m)
            p = np.where(ok & live[:, None], np.exp(s - np.where(live, m, 0)[:, None]), 0.0)
            denom = p.sum(axis=1) + (np.exp(sink - m) if sinks is not None else 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                lse[b, h] = np.where(live, m + np.log(denom), -np.inf)
                o[b, :, h, :] = np.where(live[:, None], (p / denom[:, None]) @ v[b, :, hk, :], 0)
    return o, lse


def oracle(q, k, v, cfg):
    """Dense or packed (cu_seqlens) batches: packed ones run per sequence."""
    if "cu_q" not in cfg:
        return attention_oracle(q, k, v, cfg)
    cu_q, cu_k = cfg["cu_q"], cfg["cu_k"]
    o = np.zeros(q.shape[:3] + (v.shape[3],))
    lse = np.full((1, q.shape[2], q.shape[1]), -np.inf)
    for s in range(len(cu_q) - 1):
        qs, qe, ks, ke = cu_q[s], cu_q[s + 1], cu_k[s], cu_k[s + 1]
        if qe == qs:
            continue
        so, sl = attention_oracle(q[:, qs:qe], k[:, ks:ke], v[:, ks:ke], cfg)
        o[:, qs:qe], lse[:, :, qs:qe] = so, sl
    return o, lse


def rel_l2(out, ref):
    """||out - ref|| / ||ref|| over finite entries; infinities must match exactly."""
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        return float("inf")
    if np.isnan(out).any():
        return float("nan")
    inf = np.isinf(ref) | np.isinf(out)
    if not np.array_equal(out[inf], ref[inf]):
        return float("inf")
    num = np.linalg.norm(out[~inf] - ref[~inf])
    den = np.linalg.norm(ref[~inf])
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


class Runner:
    def __init__(self, exe, workdir):
        self.exe, self.dir, self.failures, self.count = exe, workdir, [], 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, args):
        return subprocess.run([self.exe] + args, capture_output=True, text=True)

    def attend(self, name, q, k, v, cfg, backend, file_dtype=np.float32, extra=()):
        """Writes the inputs, runs polyhead attend, compares with the oracle."""
        self.count += 1
        files = {}
        for t, arr in (("q", q), ("k", k), ("v", v)):
            a = arr.astype(file_dtype)
            if cfg.get("fortran"):
                a = np.asfortranarray(a)
            files[t] = self.path(f"{name}_{t}.npy")
            np.save(files[t], a)
        args = ["attend", "--backend", backend, "--out", self.path(f"{name}_o.npy"),
                "--lse", self.path(f"{name}_lse.npy")]
        for t in ("q", "k", "v"):
            args += ["--" + t, files[t]]
        for key, flag, dt in (("alibi", "--alibi", np.float32), ("sinks", "--sinks", np.float32),
                              ("cu_q", "--cu-seqlens-q", np.int64),
                              ("cu_k", "--cu-seqlens-k", np.int32)):
            if key in cfg:
                np.save(self.path(f"{name}_{key}.npy"), np.asarray(cfg[key], dt))
                args += [flag, self.path(f"{name}_{key}.npy")]
        if "blocks" in cfg:
            bits, bq, bk = cfg["blocks"]
            np.save(self.path(f"{name}_bits.npy"), bits.astype(np.uint8))
            args += ["--mask", f"blocks:{self.path(name + '_bits.npy')},bq={bq},bk={bk}"]
        elif "mask" in cfg:
            args += ["--mask", cfg["mask"]]
        for key in ("scale", "softcap"):
            if key in cfg:
                args += ["--" + key, repr(cfg[key])]
        args += list(extra)
        dtype = cfg.get("dtype", "fp16" if file_dtype == np.float16 else "fp32")
        if "dtype" in cfg:
            args += ["--dtype", dtype]

        r = self.run(args)
        label = f"{name} [{backend}]"
        if r.returncode != 0:
            self.failures.append(f"{label}: exit {r.returncode}: {r.stderr.strip()}")
            print(f"FAIL {label}: exit {r.returncode}: {r.stderr.strip()}")
            return
        # The oracle sees what the engine computes with: the file's values rounded to dtype.
        packed = q.ndim == 3
        qr, kr, vr = (round_to(x.astype(file_dtype), dtype) for x in (q, k, v))
        if packed:
            qr, kr, vr = qr[None], kr[None], vr[None]
        o_ref, lse_ref = oracle(qr, kr, vr, cfg)
        if packed:
            o_ref, lse_ref = o_ref[0], lse_ref[0]
        o = np.load(self.path(f"{name}_o.npy"))
        lse = np.load(self.path(f"{name}_lse.npy"))
        tol = TOLERANCE[dtype]
        e_o, e_lse = rel_l2(o, o_ref), rel_l2(lse, lse_ref)
        ok = o.dtype == np.float32 and lse.dtype == np.float32 and e_o <= tol and e_lse <= tol
        status = "pass" if ok else "FAIL"
        print(f"{status} {label}: o err {e_o:.2e}, lse err {e_lse:.2e} (tol {tol:g}, "
              f"o {o.dtype}{list(o.shape)}, lse {lse.dtype}{list(lse.shape)})")
        if not ok:
            self.failures.append(label)

    def expect_error(self, name, args, pattern):
        """The error contract: exit 2, nothing on stdout, one line 'polyhead: error: ...'."""
        self.count += 1
        r = self.run(args)
        lines = r.stderr.splitlines()
        ok = (r.returncode == 2 and r.stdout == "" and len(lines) == 1 and
              lines[0].startswith("polyhead: error: ") and pattern in lines[0])
        print(f"{'pass' if ok else 'FAIL'} error {name}: exit {r.returncode}: {r.stderr.strip()}")
        if not ok:
            self.failures.append(f"error {name} (wanted '{pattern}')")


def available_backends(runner):
    """The host backends `polyhead info` lists as available (cpu needs Highway)."""
    info = runner.run(["info"]).stdout.splitlines()
    names = [l.split()[0] for l in info if l.startswith("  ") and " available " in l + " "]
    return [b for b in ("cpu", "reference") if b in names]


def main():
    exe = sys.argv[1]
    rng = np.random.default_rng(2024)
    randn = lambda *shape: rng.standard_normal(shape)
    with tempfile.TemporaryDirectory(prefix="polyhead_cli_") as workdir:
        t = Runner(exe, workdir)
        backends = available_backends(t)
        print("backends:", ", ".join(backends))
        q, k, v = randn(2, 37, 4, 64), randn(2, 113, 2, 64), randn(2, 113, 2, 32)
        slopes = 2.0 ** (-8.0 * np.arange(1, 5) / 4)
        sinks = np.array([0.5, -1.0, 2.0, 0.0])
        # Sq > Sk: bottom-right causal leaves the first Sq - Sk rows fully masked.
        qs, ks, vs = randn(1, 50, 4, 16), randn(1, 20, 4, 16), randn(1, 20, 4, 16)
        bits = (rng.random((4, 3, 8)) < 0.6).astype(np.uint8)
        bits[1, 0, :] = 0  # head 1's first query block sees nothing: o = 0, lse = -inf
        cu_q, cu_k = np.array([0, 5, 5, 40, 47]), np.array([0, 9, 30, 30, 101])
        packed = (randn(47, 4, 32), randn(101, 1, 32), randn(101, 1, 48))
        configs = [
            ("dense_gqa_dv", (q, k, v), {}, np.float32),
            ("causal_fully_masked_rows", (qs, ks, vs), {"mask": "causal"}, np.float32),
            ("causal_topleft", (q, k, v), {"mask": "causal:topleft"}, np.float32),
            ("window_alibi", (q, k, v), {"mask": "window:8,4", "alibi": slopes}, np.float32),
            ("window_topleft_alibi", (q, k, v),
             {"mask": "window:8,4,topleft", "alibi": slopes}, np.float32),
            ("window_sink_tokens", (q, k, v), {"mask": "window:5,0,sink=3"}, np.float32),
            ("softcap_sinks_masked_rows", (qs, ks, vs),
             {"mask": "causal", "softcap": 2.0, "sinks": sinks}, np.float32),
            ("mqa_scale", (randn(1, 64, 4, 40), randn(1, 64, 1, 40), randn(1, 64, 1, 24)),
             {"scale": 0.3, "mask": "window:-1,7"}, np.float32),
            ("varlen_packed", packed,
             {"cu_q": cu_q, "cu_k": cu_k, "mask": "causal", "sinks": sinks}, np.float32),
            ("fp16_files", (q, k, v), {"mask": "causal", "alibi": slopes}, np.float16),
            ("bf16_dtype", (q, k, v), {"dtype": "bf16", "softcap": 5.0}, np.float32),
            ("fp16_dtype_from_f64", (q, k, v), {"dtype": "fp16", "mask": "causal"}, np.float64),
            ("float64_fortran", (q, k, v), {"fortran": True, "mask": "window:3,3"}, np.float64),
            ("block_mask_file", (randn(1, 70, 4, 32), randn(1, 60, 2, 32), randn(1, 60, 2, 32)),
             {"blocks": (bits, 32, 8)}, np.float32),
        ]
        for backend in backends:
            for name, (qq, kk, vv), cfg, file_dtype in configs:
                t.attend(f"{name}_{backend}", qq, kk, vv, cfg, backend, file_dtype)

        # File-level and library errors: exit 2 and one line on stderr.
        p = t.path
        np.save(p("q4.npy"), randn(1, 8, 4, 16).astype(np.float32))
        np.save(p("k_bad_d.npy"), randn(1, 8, 2, 12).astype(np.float32))
        np.save(p("k_bad_h.npy"), randn(1, 8, 3, 16).astype(np.float32))
        np.save(p("v4.npy"), randn(1, 8, 2, 16).astype(np.float32))
        np.save(p("k4.npy"), randn(1, 8, 2, 16).astype(np.float32))
        np.save(p("q3.npy"), randn(8, 4, 16).astype(np.float32))
        np.save(p("q_int.npy"), np.zeros((1, 8, 4, 16), np.int32))
        np.save(p("alibi3.npy"), np.ones(3, np.float32))
        np.save(p("cu_bad.npy"), np.array([0, 5, 3], np.int32))
        with open(p("q4.npy"), "rb") as f:
            data = f.read()
        with open(p("truncated.npy"), "wb") as f:
            f.write(data[: len(data) // 2])
        with open(p("text.npy"), "w") as f:
            f.write("not an array\n")
        base = lambda q="q4.npy", k="k4.npy", v="v4.npy": [
            "attend", "--q", p(q), "--k", p(k), "--v", p(v), "--out", p("err_o.npy")]
        t.expect_error("mismatched head dim", base(k="k_bad_d.npy"), "k.shape[3]")
        t.expect_error("heads do not divide", base(k="k_bad_h.npy"), "does not divide")
        t.expect_error("missing file", base(q="missing.npy"), "missing.npy")
        t.expect_error("not npy", base(v="text.npy"), "text.npy")
        t.expect_error("truncated", base(q="truncated.npy"), "truncated.npy")
        t.expect_error("int q", base(q="q_int.npy"), "not a float array")
        t.expect_error("rank 3 without cu_seqlens", base(q="q3.npy"), "dimensions")
        t.expect_error("alibi length", base() + ["--alibi", p("alibi3.npy")], "alibi")
        t.expect_error("cu_seqlens", base() + ["--cu-seqlens-q", p("cu_bad.npy"),
                                               "--cu-seqlens-k", p("cu_bad.npy")], "cu_seqlens")
        t.expect_error("bad mask", base() + ["--mask", "window:1"], "mask")
        t.expect_error("bad softcap", base() + ["--softcap", "-1"], "softcap")
        t.expect_error("bad number", base() + ["--scale", "0.1x"], "--scale")
        t.expect_error("unknown backend", base() + ["--backend", "tpu"], "tpu")

        print(f"\n{t.count - len(t.failures)} of {t.count} passed")
        for f in t.failures:
            print("FAILED", f)
        return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(main())
