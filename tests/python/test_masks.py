"""Mask kinds against dense boolean masks built from the documented rules (oracle.py), their text
forms, and BlockMap."""

import gc

import numpy as np
import pytest

import oracle
import polyhead
from helpers import cpu_backends, qkv, randn
from polyhead import masks

BACKENDS = cpu_backends()


def run_and_check(q, k, v, mask, dense, backend):
    o, lse = polyhead.attention(q, k, v, mask=mask, backend=backend, return_lse=True)
    ref_o, ref_lse = oracle.attention(q, k, v, mask=dense)
    assert oracle.rel_l2(o, ref_o) < 1e-5
    oracle.assert_lse_close(lse, ref_lse)


NA_CASES = [
    dict(grid=(23,), kernel=(5,)),
    dict(grid=(23,), kernel=(4,), stride=(2,)),
    dict(grid=(23,), kernel=(5,), dilation=(2,)),
    dict(grid=(23,), kernel=(6,), dilation=(3,), stride=(3,)),
    dict(grid=(23,), kernel=(5,), causal=(True,)),
    dict(grid=(20,), kernel=(4,), stride=(3,), causal=(True,)),
    dict(grid=(6, 7), kernel=(3, 5)),
    dict(grid=(6, 7), kernel=(3, 2), dilation=(2, 3), stride=(1, 2)),
    dict(grid=(8, 5), kernel=(4, 3), causal=(True, False)),
    dict(grid=(3, 4, 5), kernel=(3, 3, 3), causal=(False, True, False)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", NA_CASES, ids=lambda c: str(c))
def test_neighborhood(rng, backend, case):
    n = int(np.prod(case["grid"]))
    q, k, v = qkv(rng, b=1, sq=n, sk=n, hq=2, hkv=1, dqk=16)
    mask = masks.neighborhood(case["grid"], case["kernel"], dilation=case.get("dilation", 1),
                              stride=case.get("stride", 1), causal=case.get("causal", False))
    dense = oracle.neighborhood_mask(case["grid"], case["kernel"], case.get("dilation"),
                                     case.get("stride"), case.get("causal"))
    run_and_check(q, k, v, mask, dense, backend)
    assert polyhead.unmasked_pairs(q.shape, k.shape, v.shape, mask=mask) == 2 * dense.sum()


def test_neighborhood_scalars_broadcast():
    a = masks.neighborhood((16, 16), 5, dilation=2, causal=True)
    b = masks.neighborhood((16, 16), (5, 5), dilation=(2, 2), causal=(True, True))
    assert a == b
    assert str(a) == "na:grid=16x16,kernel=5x5,dilation=2x2,stride=1x1,causal=1x1"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", [
    dict(block=4, local=2, vstride=3),
    dict(block=4, local=1, vstride=4, offset=1, dense_heads=1),
    dict(block=3, local=2, vstride=5, homo=True),
])
def test_s2(rng, backend, kw):
    q, k, v = qkv(rng, b=1, sq=30, sk=41, hq=4, hkv=2, dqk=16)
    dense = oracle.s2_mask(30, 41, 4, 2, **kw)
    run_and_check(q, k, v, masks.s2(**kw), dense, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["per_head", "shared_2d", "shared_3d"])
@pytest.mark.parametrize("dtype", [bool, np.uint8])
def test_blocks(rng, backend, layout, dtype):
    sq, sk, bq, bk = 21, 30, 4, 8
    qb, kb = -(-sq // bq), -(-sk // bk)
    q, k, v = qkv(rng, b=2, sq=sq, sk=sk, hq=4, hkv=2, dqk=16)
    heads = 4 if layout == "per_head" else 1
    bits = rng.random((heads, qb, kb + 1)) < 0.5  # an extra trailing block is ignored
    array = bits[0] if layout == "shared_2d" else bits
    mask = masks.blocks(array.astype(dtype), bq=bq, bk=bk)
    assert str(mask).startswith("blocks:") and "bq=4,bk=8" in str(mask)
    gc.collect()  # the mask keeps its (temporary) array alive
    run_and_check(q, k, v, mask, oracle.block_mask(bits, sq, sk, bq, bk), backend)


def test_blocks_is_a_view_not_a_copy(rng):
    q, k, v = qkv(rng, b=1, sq=8, sk=8, hq=1, hkv=1, dqk=8)
    bits = np.ones((1, 1), np.uint8)
    mask = masks.blocks(bits, bq=8, bk=8)
    assert np.all(polyhead.attention(q, k, v, mask=mask) != 0)
    bits[0, 0] = 0  # the mask reads the caller's array
    assert np.all(polyhead.attention(q, k, v, mask=mask) == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_heads(rng, backend):
    sq = sk = 16
    q, k, v = qkv(rng, b=1, sq=sq, sk=sk, hq=4, hkv=2, dqk=16)
    bits = rng.random((1, 4, 2)) < 0.5
    spec = masks.heads(["causal", masks.window(3, 0, sink=2), masks.blocks(bits, bq=4, bk=8),
                        "none"])
    assert spec.kind == "heads" and len(spec.heads) == 4 and spec.heads[0] == masks.causal()
    dense = np.stack([oracle.causal_mask(sq, sk), oracle.window_mask(sq, sk, 3, 0, sink=2),
                      oracle.block_mask(bits, sq, sk, 4, 8)[0], np.ones((sq, sk), bool)])
    run_and_check(q, k, v, spec, dense, backend)


def test_moa(rng):
    alpha, beta, n, sink, min_cache, split = [2.0, 10.0], [0.2, 0.5], 40, 4, 8, 4
    spec = masks.moa(alpha, beta, n, sink=sink, min_cache=min_cache, split=split)
    assert spec.kind == "heads"
    dense = []
    for a, b in zip(alpha, beta):
        c = min(int(np.floor(a + b * n)), n)
        c = -(-max(c, min_cache) // split) * split
        s = min(c, sink)
        i, j = np.arange(n)[:, None], np.arange(n)[None, :]
        dense.append((j <= i) & ((j < s) | (i - j < c - s)))
    q, k, v = qkv(rng, b=1, sq=n, sk=n, hq=2, hkv=1, dqk=16)
    run_and_check(q, k, v, spec, np.stack(dense), "reference")


def topk_oracle(scores, sq, sk, hq, k, window):
    """mask.h TopKMask: per kv head and query, the k highest scores among the causal window of
    `window` keys ending at pos(i) (ties: the later key)."""
    hkv = scores.shape[0]
    dense = np.zeros((hq, sq, sk), bool)
    for h in range(hq):
        g = h // (hq // hkv)
        for i in range(sq):
            pos = i + sk - sq
            keys = [j for j in range(max(0, pos - window + 1), min(pos, sk - 1) + 1)]
            best = sorted(keys, key=lambda j: (scores[g, j], j), reverse=True)[:k]
            dense[h, i, best] = True
    return dense


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk(rng, backend):
    sq, sk, hq, hkv = 12, 20, 4, 2
    q, k, v = qkv(rng, b=1, sq=sq, sk=sk, hq=hq, hkv=hkv, dqk=16)
    scores = rng.standard_normal((hkv, sk)).astype(np.float32)
    spec = masks.topk(scores, k=3, window=6)
    assert spec.is_dynamic and spec.kind == "topk"
    run_and_check(q, k, v, spec, topk_oracle(scores, sq, sk, hq, 3, 6), backend)


@pytest.mark.parametrize("spec", [masks.longheads(chunk=4, k=4), masks.dhsa(chunk=4, k=2,
                                                                             recent=3)])
def test_dynamic_selection_matches_its_block_map(rng, spec):
    # LongHeads and DHSA select from q and k: the attention must use exactly the selection
    # BlockMap.compile makes from the same data, and stay causal.
    sq = sk = 24
    q, k, v = qkv(rng, b=1, sq=sq, sk=sk, hq=2, hkv=1, dqk=16)
    bm = polyhead.BlockMap.compile(spec, sq, sk, heads_q=2, heads_kv=1, q=q[0], k=k[0])
    dense = np.stack([bm.dense(h) for h in range(2)])
    assert not np.any(dense & ~oracle.causal_mask(sq, sk)[None])
    assert dense.sum() < 2 * oracle.causal_mask(sq, sk).sum()  # something was dropped
    run_and_check(q, k, v, spec, dense, "reference")
    assert polyhead.unmasked_pairs(q, k, v, mask=spec) == dense.sum()


@pytest.mark.parametrize("text", [
    "none", "causal", "causal:topleft", "window:16,0", "window:-1,4,sink=2,topleft",
    "na:grid=8x8,kernel=3x5,dilation=2x1,stride=1x1,causal=0x1",
    "s2:block=16,local=2,vstride=4,offset=1,dense_heads=1,homo=1",
    "heads:causal|window:4,0|none", "longheads:chunk=64,k=8", "dhsa:chunk=32,k=4,recent=16",
])
def test_text_round_trip(text):
    spec = masks.parse(text)
    assert masks.parse(str(spec)) == spec
    assert repr(spec) == f"MaskSpec('{spec}')"
    assert spec.kind == text.split(":")[0]


def test_constructors_match_text():
    assert masks.none() == masks.parse("none") == polyhead.MaskSpec()
    assert masks.causal() == masks.window(-1, 0) == masks.window(None, 0)
    assert masks.window(8, 0, topleft=True, sink=4) == masks.parse("window:8,0,sink=4,topleft")
    assert masks.s2(block=16, homo=True) == masks.parse("s2:block=16,homo=1")
    assert masks.longheads() == masks.parse("longheads:chunk=256,k=16")
    assert masks.dhsa() == masks.parse("dhsa:chunk=64,k=8,recent=64")
    assert masks.heads(["causal", masks.none()]) == masks.parse("heads:causal|none")
    assert masks.none() != "none" and masks.causal() != masks.none()
    assert len({masks.causal(), masks.parse("causal")}) == 1


def test_npy_masks_from_files(tmp_path, rng):
    bits = (rng.random((2, 3)) < 0.5)
    path = tmp_path / "bits.npy"
    np.save(path, bits)
    spec = masks.parse(f"blocks:{path},bq=4,bk=4")
    assert str(spec) == f"blocks:{path},bq=4,bk=4"
    q, k, v = qkv(rng, b=1, sq=8, sk=12, hq=2, hkv=1, dqk=8)
    run_and_check(q, k, v, spec, oracle.block_mask(bits[None], 8, 12, 4, 4), "reference")


class TestBlockMap:
    def test_causal_tiles(self):
        bm = polyhead.BlockMap.compile("causal", 130, 130, heads_q=4, heads_kv=2, tile=(64, 32))
        assert (bm.seqlen_q, bm.seqlen_k, bm.heads_q, bm.heads_kv) == (130, 130, 4, 2)
        assert bm.tile == (64, 32) and (bm.q_tiles, bm.k_tiles) == (3, 5)
        dense = oracle.causal_mask(130, 130)
        np.testing.assert_array_equal(bm.dense(1), dense)
        assert bm.pair_count() == 4 * dense.sum()
        tiles = bm.tiles(0)
        for qt in range(bm.q_tiles):
            for kt in range(bm.k_tiles):
                block = dense[qt * 64:(qt + 1) * 64, kt * 32:(kt + 1) * 32]
                want = 2 if block.all() else (1 if block.any() else 0)
                # A map may visit a tile that turns out empty, never skip a visible one.
                assert tiles[qt, kt] == want or (want == 0 and tiles[qt, kt] == 1)
            row = bm.row(0, qt)
            assert [t for t, _ in row] == list(np.nonzero(tiles[qt])[0])
            assert [f for _, f in row] == [bool(tiles[qt, t] == 2) for t, _ in row]
        assert bm.visited_tiles() == 4 * np.count_nonzero(tiles)
        assert bm.full_tiles() == 4 * np.count_nonzero(tiles == 2)
        assert bm.allowed(0, 5, 5) and not bm.allowed(0, 5, 6)
        np.testing.assert_array_equal(bm.allowed_row(0, 70, 60, 20), dense[70, 60:80])
        assert "BlockMap(seqlen_q=130" in repr(bm)

    def test_index_errors(self):
        bm = polyhead.BlockMap.compile(masks.window(4, 0), 10, 10)
        with pytest.raises(IndexError, match="head = 1"):
            bm.row(1, 0)
        with pytest.raises(IndexError, match="q_tile"):
            bm.row(0, 1)
        with pytest.raises(IndexError, match="j = 10"):
            bm.allowed(0, 0, 10)
        with pytest.raises(IndexError, match="out of range"):
            bm.allowed_row(0, 0, 5, 6)

    def test_dynamic_needs_data(self, rng):
        with pytest.raises(ValueError, match="selects keys from the data"):
            polyhead.BlockMap.compile("longheads:chunk=4,k=4", 16, 16)
        scores = randn(rng, (1, 16))
        bm = polyhead.BlockMap.compile(masks.topk(scores, k=2, window=4), 16, 16,
                                       q=randn(rng, (16, 1, 8)), k=randn(rng, (16, 1, 8)))
        np.testing.assert_array_equal(bm.dense(0), topk_oracle(scores, 16, 16, 1, 2, 4)[0])


def slice_mask(sq, sk, ranges):
    """Dense mask of MagiAttention slices: causal is bottom-right, invcausal top-left."""
    i = np.arange(sq)[:, None]
    j = np.arange(sk)[None, :]
    dense = np.zeros((sq, sk), bool)
    for qb, qe, kb, ke, kind in ranges:
        inside = (i >= qb) & (i < qe) & (j >= kb) & (j < ke)
        causal = j <= i + (ke - qe)
        inv = j >= i + (kb - qb)
        geometry = {"full": True, "causal": causal, "invcausal": inv, "bicausal": causal & inv}
        dense |= inside & geometry[kind]
    return dense


@pytest.mark.parametrize("backend", BACKENDS)
def test_slices(rng, backend):
    sq, sk = 40, 52
    ranges = [(0, 20, 0, 20, "causal"), (20, 40, 0, 10, "full"), (20, 40, 20, 52, "causal"),
              (5, 30, 30, 45, "bicausal"), (10, 15, 0, 52, "invcausal")]
    q, k, v = qkv(rng, b=1, sq=sq, sk=sk, hq=2, hkv=1, dqk=16)
    mask = masks.slices(ranges)
    assert masks.parse(str(mask)) == mask
    run_and_check(q, k, v, mask, slice_mask(sq, sk, ranges), backend)
    with pytest.raises(ValueError):
        masks.slices([(0, 1, 0, 1, "sideways")])
