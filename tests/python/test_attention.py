"""polyhead.attention on numpy arrays against the float64 oracle (DESIGN.md section 2)."""

import numpy as np
import pytest

import oracle
import polyhead
from helpers import cpu_backends, qkv, randn

BACKENDS = cpu_backends()


def check(o, lse, ref_o, ref_lse, dtype="float32"):
    assert oracle.rel_l2(o, ref_o) < oracle.TOLERANCE[dtype]
    if lse is not None:
        oracle.assert_lse_close(lse, ref_lse)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [
    dict(b=1, sq=1, sk=1, hq=1, hkv=1, dqk=8),      # single element
    dict(b=2, sq=7, sk=9, hq=4, hkv=4, dqk=16),     # MHA, Sq < Sk
    dict(b=1, sq=37, sk=13, hq=8, hkv=2, dqk=32),   # GQA 4:1, Sq > Sk
    dict(b=2, sq=5, sk=70, hq=6, hkv=1, dqk=24),    # MQA
    dict(b=1, sq=9, sk=11, hq=4, hkv=2, dqk=24, dv=8),  # Dqk != Dv
])
def test_dense(rng, backend, shape):
    q, k, v = qkv(rng, **shape)
    o, lse = polyhead.attention(q, k, v, backend=backend, return_lse=True)
    assert o.dtype == np.float32 and o.shape == q.shape[:3] + (v.shape[3],)
    assert lse.dtype == np.float32 and lse.shape == (q.shape[0], q.shape[2], q.shape[1])
    check(o, lse, *oracle.attention(q, k, v))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("topleft", [False, True])
@pytest.mark.parametrize("sq,sk", [(7, 7), (5, 12), (12, 5)])
def test_causal_alignments(rng, backend, topleft, sq, sk):
    q, k, v = qkv(rng, b=2, sq=sq, sk=sk, hq=4, hkv=2, dqk=16)
    mask = polyhead.masks.causal(topleft=topleft)
    assert str(mask) == ("causal:topleft" if topleft else "causal")
    o, lse = polyhead.attention(q, k, v, mask=mask, backend=backend, return_lse=True)
    ref = oracle.attention(q, k, v, mask=oracle.causal_mask(sq, sk, topleft=topleft))
    check(o, lse, *ref)
    # The text form runs the same problem.
    o2 = polyhead.attention(q, k, v, mask=str(mask), backend=backend)
    np.testing.assert_array_equal(o, o2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("left,right,sink,topleft", [
    (3, 0, 0, False), (2, 2, 0, False), (-1, 1, 0, True), (4, -1, 0, False), (2, 0, 3, False),
    (1, 1, 2, True),
])
def test_windows(rng, backend, left, right, sink, topleft):
    q, k, v = qkv(rng, b=1, sq=19, sk=23, hq=2, hkv=1, dqk=16)
    mask = polyhead.masks.window(left, right, topleft=topleft, sink=sink)
    o, lse = polyhead.attention(q, k, v, mask=mask, backend=backend, return_lse=True)
    dense = oracle.window_mask(19, 23, left, right, topleft=topleft, sink=sink)
    check(o, lse, *oracle.attention(q, k, v, mask=dense))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sinks_alibi_softcap_scale(rng, backend):
    q, k, v = qkv(rng, b=2, sq=11, sk=17, hq=4, hkv=2, dqk=16)
    sinks = rng.standard_normal(4).astype(np.float32)
    alibi = np.array([0.5, 0.25, 0.125, 0.0625], np.float32)
    kw = dict(scale=0.3, softcap=2.5)
    o, lse = polyhead.attention(q, k, v, sinks=sinks, alibi=alibi, mask="causal",
                                backend=backend, return_lse=True, **kw)
    ref = oracle.attention(q, k, v, mask=oracle.causal_mask(11, 17), sinks=sinks, alibi=alibi,
                           **kw)
    check(o, lse, *ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_alibi_topleft_and_lists(rng, backend):
    q, k, v = qkv(rng, b=1, sq=6, sk=10, hq=2, hkv=2, dqk=8)
    o = polyhead.attention(q, k, v, alibi=[0.5, 0.125], sinks=(0.0, 1.0),
                           mask="causal:topleft", backend=backend)
    ref, _ = oracle.attention(q, k, v, alibi=[0.5, 0.125], sinks=[0.0, 1.0], topleft=True,
                              mask=oracle.causal_mask(6, 10, topleft=True))
    assert oracle.rel_l2(o, ref) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_fully_masked_rows(rng, backend):
    # Bottom-right causal with Sq > Sk: the first Sq - Sk rows see no key.
    q, k, v = qkv(rng, b=1, sq=9, sk=4, hq=2, hkv=1, dqk=8)
    o, lse = polyhead.attention(q, k, v, mask="causal", backend=backend, return_lse=True)
    assert np.all(o[:, :5] == 0) and np.all(np.isneginf(lse[:, :, :5]))
    check(o, lse, *oracle.attention(q, k, v, mask=oracle.causal_mask(9, 4)))
    # With sinks a masked row's lse is the sink logit, o still 0.
    sinks = np.array([0.5, -1.0], np.float32)
    o, lse = polyhead.attention(q, k, v, mask="causal", sinks=sinks, backend=backend,
                                return_lse=True)
    assert np.all(o[:, :5] == 0)
    np.testing.assert_allclose(lse[0, :, :5], np.repeat(sinks[:, None], 5, axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask", ["none", "causal", "window:3,1"])
def test_varlen(rng, backend, mask):
    cu_q = np.array([0, 3, 3, 10, 11], np.int32)  # one empty sequence
    cu_k = np.array([0, 5, 9, 12, 20], np.int32)
    q, k, v = qkv(rng, b=1, sq=11, sk=20, hq=4, hkv=2, dqk=16, dv=8)
    rules = {"none": None, "causal": lambda a, b: oracle.causal_mask(a, b),
             "window:3,1": lambda a, b: oracle.window_mask(a, b, 3, 1)}
    ref_o, ref_lse = oracle.attention_varlen(q, k, v, cu_q, cu_k, mask_fn=rules[mask])
    o, lse = polyhead.attention(q, k, v, mask=mask, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k,
                                backend=backend, return_lse=True)
    assert o.shape == (1, 11, 4, 8) and lse.shape == (1, 4, 11)
    check(o, lse, ref_o, ref_lse)
    # Packed rank-3 layout [total, H, D] with lists for cu_seqlens.
    o3, lse3 = polyhead.attention(q[0], k[0], v[0], mask=mask, cu_seqlens_q=cu_q.tolist(),
                                  cu_seqlens_k=cu_k.tolist(), backend=backend, return_lse=True)
    assert o3.shape == (11, 4, 8) and lse3.shape == (4, 11)
    np.testing.assert_array_equal(o3, o[0])
    np.testing.assert_array_equal(lse3, lse[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_dtypes(rng, backend, dtype):
    q, k, v = qkv(rng, b=1, sq=13, sk=13, hq=2, hkv=1, dqk=32, dtype=dtype)
    ok, why = polyhead.supports(q, k, v, backend=backend)
    if not ok:
        pytest.skip(f"{backend}: {why}")
    o = polyhead.attention(q, k, v, mask="causal", backend=backend)
    assert o.dtype == dtype
    ref, _ = oracle.attention(q, k, v, mask=oracle.causal_mask(13, 13))
    assert oracle.rel_l2(o, ref) < oracle.TOLERANCE[np.dtype(dtype).name]


def test_output_dtype_follows_out(rng):
    q, k, v = qkv(rng, b=1, sq=5, sk=5, hq=2, hkv=2, dqk=8, dtype=np.float16)
    out = np.empty((1, 5, 2, 8), np.float32)
    ok, _ = polyhead.supports(q, k, v, out_dtype="float32")
    if not ok:
        pytest.skip("no backend writes f32 output for f16 inputs")
    assert polyhead.attention(q, k, v, out=out) is out
    ref, _ = oracle.attention(q, k, v)
    assert oracle.rel_l2(out, ref) < 2e-3


def test_backends_agree(rng):
    q, k, v = qkv(rng, b=2, sq=70, sk=130, hq=4, hkv=2, dqk=64)
    outs = [polyhead.attention(q, k, v, mask="window:40,0", backend=b) for b in BACKENDS]
    for o in outs[1:]:
        assert oracle.rel_l2(o, outs[0]) < 1e-5
    assert polyhead.choose_backend(q, k, v) == BACKENDS[0]


def test_num_threads(rng):
    q, k, v = qkv(rng, b=1, sq=64, sk=64, hq=2, hkv=2, dqk=32)
    a = polyhead.attention(q, k, v, num_threads=1)
    b = polyhead.attention(q, k, v, num_threads=2)
    assert oracle.rel_l2(a, b) < 1e-6


def test_read_only_inputs(rng):
    q, k, v = qkv(rng)
    for x in (q, k, v):
        x.flags.writeable = False
    ref, _ = oracle.attention(q, k, v)
    assert oracle.rel_l2(polyhead.attention(q, k, v), ref) < 1e-5
    # A broadcast (stride 0, read-only) k and v.
    kb = np.broadcast_to(randn(rng, (1, 1, 2, 16)), (2, 9, 2, 16))
    ref, _ = oracle.attention(q, kb, kb)
    assert oracle.rel_l2(polyhead.attention(q, kb, kb), ref) < 1e-5
