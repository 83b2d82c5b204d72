"""The test oracle, written from DESIGN.md section 2 and the mask rules of include/polyhead/mask.h
and specs/kernels.md (section 8), in float64 numpy: attention with a dense boolean mask, and the
dense masks themselves, built by enumerating every (i, j) pair."""

from __future__ import annotations

import itertools

import numpy as np


def attention(q, k, v, *, mask=None, scale=None, softcap=0.0, alibi=None, sinks=None,
              topleft=False):
    """o [B, Sq, Hq, Dv], lse [B, Hq, Sq] in float64. mask: bool [Sq, Sk] or [Hq, Sq, Sk]
    (True = visible) or None. topleft places query i at key i (ALiBi distances)."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    b, sq, hq, dqk = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    group = hq // hkv
    kk = np.repeat(k, group, axis=2)  # query head h reads kv head h // group
    vv = np.repeat(v, group, axis=2)
    scale = dqk ** -0.5 if scale is None else scale
    s = scale * np.einsum("bihd,bjhd->bhij", q, kk)
    if softcap:
        s = softcap * np.tanh(s / softcap)
    if alibi is not None:
        pos = np.arange(sq)[:, None] + (0 if topleft else sk - sq)
        dist = np.abs(pos - np.arange(sk)[None, :])
        s = s - np.asarray(alibi, np.float64)[None, :, None, None] * dist
    if mask is not None:
        m = np.asarray(mask, bool)
        m = m[None, None] if m.ndim == 2 else m[None]
        s = np.where(m, s, -np.inf)
    peak = s.max(axis=-1)
    if sinks is not None:
        sink = np.asarray(sinks, np.float64)[None, :, None]
        peak = np.maximum(peak, sink)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    e = np.exp(s - peak[..., None])
    total = e.sum(axis=-1)
    if sinks is not None:
        total = total + np.exp(sink - peak)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = peak + np.log(total)
        p = np.where(total[..., None] > 0, e / total[..., None], 0.0)
    o = np.einsum("bhij,bjhd->bihd", p, vv)
    return o, lse


def attention_varlen(q, k, v, cu_q, cu_k, *, mask_fn=None, **kw):
    """Packed batch ([1, total, H, D] each): every sequence on its own. mask_fn(sq, sk) gives
    each sequence's dense mask."""
    o = np.zeros(q.shape[:3] + (v.shape[3],))
    lse = np.full((1, q.shape[2], q.shape[1]), -np.inf)
    for s in range(len(cu_q) - 1):
        qs, qe, ks, ke = cu_q[s], cu_q[s + 1], cu_k[s], cu_k[s + 1]
        if qe == qs:
            continue
        mask = mask_fn(qe - qs, ke - ks) if mask_fn else None
        os_, ls = attention(q[:, qs:qe], k[:, ks:ke], v[:, ks:ke], mask=mask, **kw)
        o[:, qs:qe], lse[:, :, qs:qe] = os_, ls
    return o, lse


def window_mask(sq, sk, left, right, *, topleft=False, sink=0):
    """Keys pos(i) - left <= j <= pos(i) + right (-1 = unbounded), plus j < sink within the
    right bound; pos(i) = i + Sk - Sq (bottom-right) or i (top-left)."""
    m = np.zeros((sq, sk), bool)
    for i, j in itertools.product(range(sq), range(sk)):
        pos = i if topleft else i + sk - sq
        right_ok = right == -1 or j <= pos + right
        left_ok = left == -1 or j >= pos - left
        m[i, j] = right_ok and (left_ok or j < sink)
    return m


def causal_mask(sq, sk, *, topleft=False):
    return window_mask(sq, sk, -1, 0, topleft=topleft)


def _na_allowed_1d(x, y, length, kernel, dilation, stride, causal):
    """kernels.md section 8, one dimension."""
    if x % dilation != y % dilation:
        return False
    g, xq, yk = x % dilation, x // dilation, y // dilation
    group_len = length // dilation + (1 if g < length % dilation else 0)
    if not causal:
        left, right = kernel // 2, kernel // 2 + kernel % 2 - 1
        leader = min((xq // stride) * stride + stride // 2, group_len - 1)
        c = min(max(leader, left), group_len - 1 - right)
        return c - left <= yk <= c + right
    leader = min((xq // stride) * stride + stride - 1, group_len - 1)
    return yk <= xq and leader - yk < kernel


def neighborhood_mask(grid, kernel, dilation=None, stride=None, causal=None):
    """Dense [N, N] mask over a row-major grid (last dimension fastest)."""
    rank = len(grid)
    dilation = dilation or (1,) * rank
    stride = stride or (1,) * rank
    causal = causal or (False,) * rank
    coords = list(itertools.product(*(range(n) for n in grid)))
    n = len(coords)
    m = np.zeros((n, n), bool)
    for i, ci in enumerate(coords):
        for j, cj in enumerate(coords):
            m[i, j] = all(_na_allowed_1d(ci[d], cj[d], grid[d], kernel[d], dilation[d],
                                         stride[d], causal[d]) for d in range(rank))
    return m


def s2_mask(sq, sk, hq, hkv, *, block, local, vstride, offset=0, dense_heads=0, homo=False):
    """S2-Attention (mask.h StridedMask): causal; kv head g keeps its `local` most recent key
    blocks and every block kb with (kb + g * step + offset) % vstride == 0, step =
    max(1, vstride // Hq); the last dense_heads kv heads are dense causal. [Hq, Sq, Sk]."""
    step = max(1, vstride // hq)
    m = np.zeros((hq, sq, sk), bool)
    for h in range(hq):
        kv = h // (hq // hkv)
        g = 0 if homo else kv
        dense = g >= hkv - dense_heads
        for i, j in itertools.product(range(sq), range(sk)):
            pos = i + sk - sq
            if pos < 0 or j > pos:
                continue
            qb, kb = pos // block, j // block
            m[h, i, j] = dense or qb - kb < local or (kb + g * step + offset) % vstride == 0
    return m


def block_mask(bits, sq, sk, bq, bk):
    """[H or 1, Sq, Sk] from block bits [H or 1, QB, KB]."""
    bits = np.asarray(bits).astype(bool)
    i = np.arange(sq) // bq
    j = np.arange(sk) // bk
    return bits[:, i][:, :, j]


def rel_l2(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    assert not np.isnan(out).any(), "output has NaN"
    denom = np.linalg.norm(ref)
    return np.linalg.norm(out - ref) / (denom if denom > 0 else 1.0)


def assert_lse_close(lse, ref, atol=1e-4):
    lse = np.asarray(lse, np.float64)
    assert not np.isnan(lse).any(), "lse has NaN"
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(lse[finite], ref[finite], atol=atol, rtol=0)


# Relative L2 tolerances (DESIGN.md section 6), for inputs already rounded to the dtype. float64
# runs still see the softmax scale as a float32 (AttentionProblem::scale), about 1e-8 relative.
TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2, "float64": 1e-7}
