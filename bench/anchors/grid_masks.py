#!/usr/bin/env python3
"""The masks of a `polyhead bench --export DIR` directory, in the forms the peers need.

numpy only (torch is optional everywhere in bench/): grid_peers.py builds FlexAttention block
masks and SDPA inputs from these, and `python3 grid_masks.py check DIR` verifies, for every case
small enough, that

  * the pair count of the mask as described here equals polyhead's (the FLOPs the peers are
    credited with are polyhead's, so the masks must be the same),
  * polyhead's exported block map (FlexAttention's 128 x 128 tiles) skips only empty tiles and
    marks full only full tiles,
  * each LongCA-bench pattern equals an independent restatement of its definition from the
    exported facts (documents, prefix length, global window, window, block size), and the block
    patterns are block-causal with their diagonal.

Mask rules follow polyhead's (include/polyhead/mask.h): query row i sits at key position
i + Sk - Sq (bottom-right) unless a window says top-left.
"""
import json
import os
import sys

import numpy as np

FULL, CAUSAL, INV_CAUSAL, BI_CAUSAL = 0, 1, 2, 3
EMPTY_LO = np.iinfo(np.int64).max // 4  # an empty interval: lo > hi, sorts last


def load_export(directory):
    with open(os.path.join(directory, "cases.json")) as f:
        doc = json.load(f)
    if doc.get("format") != "polyhead-export/1":
        raise ValueError(f"{directory}/cases.json is not a polyhead-export/1 file")
    return doc


def load_npy(directory, name):
    return np.load(os.path.join(directory, name))


# ---------------------------------------------------------------------------------------------
# Per-row key intervals: none, windows (with sinks), per-head windows, packed documents, slices.


class Intervals:
    """lo, hi: int64 [G, M, Sq] inclusive key ranges (lo > hi: empty); row i of head h may see
    key j when some m has lo[g, m, i] <= j <= hi[g, m, i] with g = head_group[h]."""

    def __init__(self, lo, hi, head_group, seqlen_k):
        self.lo, self.hi = lo, hi
        self.head_group = np.asarray(head_group, dtype=np.int64)
        self.seqlen_k = seqlen_k

    def row_pairs(self, g):
        """Visible keys per row of group g: the length of the union of its intervals."""
        lo, hi = self.lo[g], self.hi[g]
        order = np.argsort(lo, axis=0, kind="stable")
        lo = np.take_along_axis(lo, order, axis=0)
        hi = np.take_along_axis(hi, order, axis=0)
        covered = np.full(lo.shape[1], -1, dtype=np.int64)  # highest key counted so far
        total = np.zeros(lo.shape[1], dtype=np.int64)
        for m in range(lo.shape[0]):
            start = np.maximum(lo[m], covered + 1)
            total += np.maximum(0, hi[m] - start + 1)
            covered = np.maximum(covered, hi[m])
        return total

    def pairs(self):
        per_group = [int(self.row_pairs(g).sum()) for g in range(self.lo.shape[0])]
        return sum(per_group[g] for g in self.head_group)

    def dense(self, g, rows=None):
        rows = np.arange(self.lo.shape[2]) if rows is None else rows
        k = np.arange(self.seqlen_k)[None, :]
        out = np.zeros((len(rows), self.seqlen_k), dtype=bool)
        for m in range(self.lo.shape[1]):
            out |= (k >= self.lo[g, m, rows][:, None]) & (k <= self.hi[g, m, rows][:, None])
        return out


def _window_rows(sq, sk, left, right, sink, top_left):
    """[2, Sq] intervals of a window (left, right; -1 unbounded) plus `sink` first keys."""
    i = np.arange(sq, dtype=np.int64)
    pos = i if top_left else i + (sk - sq)
    lo = np.zeros(sq, dtype=np.int64) if left < 0 else np.maximum(pos - left, 0)
    hi = np.full(sq, sk - 1, dtype=np.int64) if right < 0 else np.minimum(pos + right, sk - 1)
    lo = np.where(lo > hi, EMPTY_LO, lo)
    hi = np.where(lo > hi, -1, hi)
    if sink <= 0:
        return lo[None], hi[None]
    s_hi = np.full(sq, sink - 1, dtype=np.int64)
    if right >= 0:
        s_hi = np.minimum(s_hi, pos + right)
    s_hi = np.minimum(s_hi, sk - 1)
    s_lo = np.where(s_hi >= 0, 0, EMPTY_LO)
    return np.stack([lo, s_lo]), np.stack([hi, np.where(s_hi >= 0, s_hi, -1)])


def slices_of_documents(cu, causal):
    cu = np.asarray(cu, dtype=np.int64)
    t = CAUSAL if causal else FULL
    return np.stack([cu[:-1], cu[1:], cu[:-1], cu[1:], np.full(len(cu) - 1, t)], axis=1)


def slice_intervals(slices, sq):
    """[M, Sq] intervals of MagiAttention-style slices (q range, k range, geometry); causal is
    bottom-right aligned inside the slice, inv-causal top-left, bi-causal both."""
    slices = np.asarray(slices, dtype=np.int64).reshape(-1, 5)
    cover = np.zeros(sq + 1, dtype=np.int64)
    for qb, qe, _, _, _ in slices:
        cover[qb] += 1
        cover[qe] -= 1
    m = max(1, int(np.cumsum(cover)[:-1].max()) if sq else 1)
    lo = np.full((m, sq), EMPTY_LO, dtype=np.int64)
    hi = np.full((m, sq), -1, dtype=np.int64)
    used = np.zeros(sq, dtype=np.int64)
    for qb, qe, kb, ke, t in slices:
        rows = np.arange(qb, qe, dtype=np.int64)
        a = np.full(len(rows), kb, dtype=np.int64)
        b = np.full(len(rows), ke - 1, dtype=np.int64)
        if t in (CAUSAL, BI_CAUSAL):
            b = np.minimum(b, rows + ke - qe)
        if t in (INV_CAUSAL, BI_CAUSAL):
            a = np.maximum(a, rows + kb - qb)
        ok = a <= b
        slot = used[rows]
        lo[slot[ok], rows[ok]] = a[ok]
        hi[slot[ok], rows[ok]] = b[ok]
        used[rows] += 1
    return lo, hi


def intervals_for(case, directory):
    """The case's mask as Intervals, or None for the kinds that are not row intervals."""
    mask = case["mask"]
    kind = mask["kind"]
    sq, sk, hq = case["seqlen_q"], case["seqlen_k"], case["heads_q"]
    if kind == "none":
        lo, hi = _window_rows(sq, sk, -1, -1, 0, False)
        return Intervals(lo[None], hi[None], [0] * hq, sk)
    if kind == "window":
        lo, hi = _window_rows(sq, sk, mask["left"], mask["right"], mask["sink"], mask["top_left"])
        return Intervals(lo[None], hi[None], [0] * hq, sk)
    if kind == "heads_window":
        keys = list(zip(mask["left"], mask["right"], mask["sink"]))
        distinct = sorted(set(keys), key=keys.index)
        rows = [_window_rows(sq, sk, l, r, s, False) for l, r, s in distinct]
        m = max(x[0].shape[0] for x in rows)
        lo = np.full((len(rows), m, sq), EMPTY_LO, dtype=np.int64)
        hi = np.full((len(rows), m, sq), -1, dtype=np.int64)
        for g, (a, b) in enumerate(rows):
            lo[g, : a.shape[0]], hi[g, : b.shape[0]] = a, b
        return Intervals(lo, hi, [distinct.index(k) for k in keys], sk)
    if kind in ("varlen", "slices"):
        if kind == "varlen":
            slices = slices_of_documents(load_npy(directory, mask["cu_seqlens"]), mask["causal"])
        else:
            slices = load_npy(directory, mask["slices"])
        lo, hi = slice_intervals(slices, sq)
        return Intervals(lo[None], hi[None], [0] * hq, sk)
    return None


# ---------------------------------------------------------------------------------------------
# Element rules, written for numpy and torch alike (xp is the module): broadcastable integer
# arrays h, q, k in, booleans out. FlexAttention's mask_mod calls them with torch scalars.


def _min(xp, a, b):
    return xp.where(a < b, a, b)


def _max(xp, a, b):
    return xp.where(a > b, a, b)


def na_allowed(xp, mask, q, k):
    """NATTEN's rule (kernels.md section 8) over a row-major grid, per dimension."""
    rank = mask["rank"]
    ok = None
    qs, ks = q, k
    coords = []
    for d in reversed(range(rank)):
        n = mask["grid"][d]
        coords.append((qs % n, ks % n))
        qs, ks = qs // n, ks // n
    coords.reverse()
    for d in range(rank):
        x, y = coords[d]
        n, kern = mask["grid"][d], mask["kernel"][d]
        dil, stride, causal = mask["dilation"][d], mask["stride"][d], mask["causal"][d]
        g, xq = x % dil, x // dil
        group_len = n // dil + xp.where(g < n % dil, 1, 0)
        if not causal:
            left, right = kern // 2, kern // 2 + kern % 2 - 1
            leader = _min(xp, (xq // stride) * stride + stride // 2, group_len - 1)
            c = _min(xp, _max(xp, leader, left), group_len - 1 - right)
            lo, hi = c - left, c + right
        else:
            leader = _min(xp, (xq // stride) * stride + stride - 1, group_len - 1)
            lo, hi = _max(xp, leader - kern + 1, 0), xq
        yq = y // dil
        this = (y % dil == g) & (yq >= lo) & (yq <= hi)
        ok = this if ok is None else ok & this
    return ok


def s2_allowed(xp, mask, case, h, q, k):
    """S2-Attention (kernels.md section 7): causal; local blocks and every vstride-th block."""
    hq, hkv = case["heads_q"], case["heads_kv"]
    block, local, vstride = mask["block"], mask["local"], mask["vstride"]
    step = max(1, vstride // hq)
    kv = h // (hq // hkv)
    group = kv * 0 if mask["homo"] else kv
    dense = group >= hkv - mask["dense_heads"]
    pos = q + (case["seqlen_k"] - case["seqlen_q"])
    qb, kb = pos // block, k // block
    vertical = (kb + group * step + mask["offset"]) % vstride == 0
    return (pos >= 0) & (k <= pos) & (kb <= qb) & ((qb - kb < local) | dense | vertical)


def dense_mask(case, directory, head):
    """bool [Sq, Sk] of one query head (static kinds only)."""
    sq, sk = case["seqlen_q"], case["seqlen_k"]
    iv = intervals_for(case, directory)
    if iv is not None:
        return iv.dense(iv.head_group[head])
    mask = case["mask"]
    q = np.arange(sq, dtype=np.int64)[:, None]
    k = np.arange(sk, dtype=np.int64)[None, :]
    if mask["kind"] == "na":
        return na_allowed(np, mask, q, k)
    if mask["kind"] == "s2":
        return s2_allowed(np, mask, case, np.int64(head), q, k)
    if mask["kind"] == "blocks":
        bits = load_npy(directory, mask["bits"]).astype(bool)
        return bits[head if bits.shape[0] > 1 else 0][q // mask["block_q"], k // mask["block_k"]]
    raise ValueError(f"mask kind {mask['kind']} has no dense form")


def representative(case, directory, head):
    """The first query head whose mask equals head's (kinds whose masks differ by head: per-head
    windows, S2 by kv head, block masks with a row per head)."""
    mask = case["mask"]
    if mask["kind"] == "heads_window":
        keys = list(zip(mask["left"], mask["right"], mask["sink"]))
        return keys.index(keys[head])
    if mask["kind"] == "s2":
        ratio = case["heads_q"] // case["heads_kv"]
        return head // ratio * ratio
    if mask["kind"] == "blocks":
        rows = np.load(os.path.join(directory, mask["bits"]), mmap_mode="r").shape[0]
        return head if rows > 1 else 0
    return 0


def head_groups(case, directory):
    """One representative query head per distinct mask."""
    return sorted({representative(case, directory, h) for h in range(case["heads_q"])})


def block_classes(dense, tile):
    """u8 [Qt, Kt]: 0 no visible pair, 2 all pairs visible, 1 otherwise (edge tiles clipped)."""
    sq, sk = dense.shape
    qt, kt = -(-sq // tile), -(-sk // tile)
    pad = np.zeros((qt * tile, kt * tile), dtype=np.int32)
    pad[:sq, :sk] = dense
    inside = np.zeros_like(pad)
    inside[:sq, :sk] = 1
    count = pad.reshape(qt, tile, kt, tile).sum(axis=(1, 3))
    size = inside.reshape(qt, tile, kt, tile).sum(axis=(1, 3))
    return np.where(count == 0, 0, np.where(count == size, 2, 1)).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Independent restatements of LongCA-bench's patterns (for the check), from the exported facts.


def longca_oracle(case, directory):
    p, sq = case["pattern"], case["seqlen_q"]
    info = case["info"]
    if sq != case["seqlen_k"]:
        return None  # the definitions are of square masks (decode cases are full or causal)
    i = np.arange(sq, dtype=np.int64)[:, None]
    j = np.arange(case["seqlen_k"], dtype=np.int64)[None, :]
    causal = j <= i
    if p == "full":
        return np.ones((sq, sq), dtype=bool)
    if p == "causal":
        return causal
    if p in ("sliding_window", "sliding_window_causal"):
        w = info["window"]
        if w >= sq:
            return causal if p == "sliding_window_causal" else np.ones((sq, sq), dtype=bool)
        return (i - j <= w) & ((j <= i) if p == "sliding_window_causal" else (j - i <= w))
    if p == "prefix_lm_causal":
        pre = info["prefix"]
        return causal | ((i < pre) & (j < pre))
    if p == "global_sliding_window":
        g, s = info["global"], sq
        return (((j < g) & (j <= i - (s - g))) | ((i < g) & (j >= g) & (j <= i + s - g))
                | ((i >= g) & (j >= g) & (np.abs(i - j) <= g)))
    if case["documents"] is None:
        return None
    cu = load_npy(directory, case["documents"]).astype(np.int64)
    doc = np.searchsorted(cu, np.arange(sq), side="right") - 1
    di, dj = doc[:, None], doc[None, :]
    same = di == dj
    start = cu[doc][:, None]
    if p == "causal_document":
        return same & causal
    if p == "full_document":
        return same
    if p == "share_question":
        if len(cu) == 2:
            return causal
        first = (di <= 1) & (dj <= 1) & causal  # question and first answer: one causal span
        return first | ((di >= 2) & same & causal) | ((di >= 2) & (dj == 0))
    if p == "causal_blockwise":
        last = len(cu) - 2
        return (same & causal) | ((di == last) & causal)
    if p == "prefix_lm_document":
        pre = info["prefix"]
        return same & (causal | ((i - start < pre) & (j - start < pre)))
    if p == "block_causal_document":
        b = info["block"]
        return same & (j <= start + ((i - start) // b + 1) * b - 1)
    return None


# ---------------------------------------------------------------------------------------------


def check_case(case, directory, max_elements):
    """Problems found in one case (empty: consistent); `skipped` when too large to check."""
    kind = case["mask"]["kind"]
    if kind in ("dynamic", "other"):
        return [], "data-dependent or unexported mask"
    problems = []
    sq, sk, batch = case["seqlen_q"], case["seqlen_k"], case["batch"]
    per_batch = 1 if kind == "varlen" else batch
    iv = intervals_for(case, directory)
    if iv is not None and iv.pairs() * per_batch != case["pairs"]:
        problems.append(f"pairs from the intervals {iv.pairs() * per_batch} != polyhead's "
                        f"{case['pairs']}")
    groups = head_groups(case, directory)
    if sq * sk * len(groups) > max_elements:
        return problems, "too large for the dense checks"
    dense = {h: dense_mask(case, directory, h) for h in groups}
    if iv is None:
        total = sum(int(dense[representative(case, directory, h)].sum())
                    for h in range(case["heads_q"]))
        if total * batch != case["pairs"]:
            problems.append(f"dense pairs {total * batch} != polyhead's {case['pairs']}")
    if case["blockmap"]:
        bm = load_npy(directory, case["blockmap"]["file"])
        tile = case["blockmap"]["block"]
        for h in groups:
            want = block_classes(dense[h], tile)
            got = bm[case["blockmap"]["head_group"][h]]
            if np.any((got == 0) & (want != 0)):
                problems.append(f"head {h}: the block map skips tiles with visible pairs")
            if np.any((got == 2) & (want != 2)):
                problems.append(f"head {h}: the block map marks partial tiles full")
            if np.any((got != 0) & (want == 0)):
                problems.append(f"head {h}: the block map visits empty tiles")
    oracle = longca_oracle(case, directory)
    if oracle is not None and not np.array_equal(oracle, dense[groups[0]]):
        bad = np.argwhere(oracle != dense[groups[0]])[:3].tolist()
        problems.append(f"differs from the {case['pattern']} definition at (i, j) {bad}")
    if case["pattern"] in ("qk_sparse", "hash_sparse"):
        bits = load_npy(directory, case["mask"]["bits"])
        n = min(bits.shape[1], bits.shape[2])
        if np.any(np.triu(bits[:, :n, :n], 1)) or not np.all(
                bits[:, np.arange(n), np.arange(n)]):
            problems.append("block pattern is not block-causal with its diagonal")
    return problems, None


def check(directory, max_elements=1 << 25):
    doc = load_export(directory)
    failures = 0
    for case in doc["cases"]:
        problems, skipped = check_case(case, directory, max_elements)
        status = "FAIL" if problems else ("ok (" + skipped + ")" if skipped else "ok")
        print(f"{case['name']:52s} {case['mask']['kind']:12s} {status}")
        for p in problems:
            print(f"    {p}")
        failures += bool(problems)
    print(f"{len(doc['cases'])} cases, {failures} inconsistent")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "check":
        print("usage: grid_masks.py check EXPORT_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(check(sys.argv[2]))
