"""polyhead next to torch.nn.functional.scaled_dot_product_attention on the same tensors.

    python examples/python/compare_sdpa.py            # CUDA if torch sees a GPU, else CPU
    python examples/python/compare_sdpa.py --device cpu --dtype float32

Both read the same q, k, v (no copies on polyhead's side): polyhead takes [B, S, H, D],
SDPA [B, H, S, D], so SDPA gets transposed views of the same memory. Prints the relative
difference and the time of each for a causal GQA problem and a sliding window.
"""

import argparse
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("this example compares against PyTorch: pip install torch")

import polyhead


def sdpa(q, k, v, *, mask=None, is_causal=False):
    """SDPA on polyhead's [B, S, H, D] tensors (GQA by repeating the kv heads)."""
    group = q.shape[2] // k.shape[2]
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    kt, vt = kt.repeat_interleave(group, dim=1), vt.repeat_interleave(group, dim=1)
    return F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask,
                                          is_causal=is_causal).transpose(1, 2)


def timed(fn, device, repeats=5):
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--seqlen", type=int, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    seqlen = args.seqlen or (4096 if device.type == "cuda" else 512)
    batch, heads_q, heads_kv, dim = 2, 16, 4, 128

    print(f"polyhead {polyhead.version()}, torch {torch.__version__}, {device}, {dtype}")
    g = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(batch, seqlen, heads_q, dim, device=device, dtype=dtype, generator=g)
    k = torch.randn(batch, seqlen, heads_kv, dim, device=device, dtype=dtype, generator=g)
    v = torch.randn(batch, seqlen, heads_kv, dim, device=device, dtype=dtype, generator=g)

    window = 512
    pos = torch.arange(seqlen, device=device)
    window_mask = (pos[None, :] <= pos[:, None]) & (pos[None, :] >= pos[:, None] - window)
    cases = [
        ("causal", "causal", dict(is_causal=True)),
        (f"window {window}", polyhead.masks.window(window, 0), dict(mask=window_mask)),
    ]
    for name, mask, sdpa_kw in cases:
        backend = polyhead.choose_backend(q, k, v, mask=mask)
        ours, t_ours = timed(lambda: polyhead.attention(q, k, v, mask=mask), device)
        theirs, t_sdpa = timed(lambda: sdpa(q, k, v, **sdpa_kw), device)
        diff = ((ours.float() - theirs.float()).norm() / theirs.float().norm()).item()
        tflops = polyhead.flops(q, k, v, mask=mask) / 1e12
        print(f"{name:>12}: polyhead[{backend}] {t_ours * 1e3:8.2f} ms "
              f"({tflops / t_ours:6.1f} TFLOP/s)   sdpa {t_sdpa * 1e3:8.2f} ms   "
              f"relative L2 difference {diff:.2e}")


if __name__ == "__main__":
    main()
