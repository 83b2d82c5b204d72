"""Errors: Python-side checks raise TypeError/ValueError naming the argument; the library's
refusals arrive as polyhead.Error (a RuntimeError) with its message; outputs stay untouched."""

import numpy as np
import pytest

import polyhead
from helpers import qkv, randn
from polyhead import masks


def test_error_class():
    assert issubclass(polyhead.Error, RuntimeError)
    with pytest.raises(polyhead.Error):
        masks.parse("bogus")


@pytest.mark.parametrize("text,message", [
    ("bogus:1", "unknown kind 'bogus'"),
    ("window:3", "LEFT,RIGHT"),
    ("window:a,0", "'a' is not an integer"),
    ("window:-2,0", "LEFT = -2 must be >= -1"),
    ("causal:sideways", "alignment 'sideways'"),
    ("na:kernel=3", "grid"),
    ("na:grid=8x8,kernel=3x3x3", "has 3 dimensions but the grid has 2"),
    ("s2:block=0", "block"),
    ("s2:block=16,speed=3", "speed"),
    ("heads:causal|longheads:chunk=4,k=4", "cannot be used per head"),
    ("blocks:/nonexistent/bits.npy", "/nonexistent/bits.npy"),
    ("topk:k=4,window=8", "scores"),
])
def test_bad_mask_strings(text, message):
    with pytest.raises(polyhead.Error, match=message.replace("|", r"\|")):
        masks.parse(text)
    q, k, v = qkv(np.random.default_rng(0))
    with pytest.raises(polyhead.Error, match=message.replace("|", r"\|")):
        polyhead.attention(q, k, v, mask=text)


def test_bad_mask_objects(rng):
    q, k, v = qkv(rng)
    with pytest.raises(TypeError, match="mask must be None, a mask string"):
        polyhead.attention(q, k, v, mask=3)
    with pytest.raises(TypeError, match="window: left must be an int"):
        masks.window(1.5, 0)
    with pytest.raises(TypeError, match="neighborhood: kernel must be an int or a tuple"):
        masks.neighborhood((8, 8), "3")
    with pytest.raises(ValueError, match=r"neighborhood: kernel = \(3, 3, 3\) has 3 dimensions"):
        masks.neighborhood((8, 8), (3, 3, 3))
    with pytest.raises(TypeError, match="blocks: array must be a numpy.ndarray"):
        masks.blocks([[1, 0]])
    with pytest.raises(TypeError, match="blocks: array has dtype f32; expected bool or uint8"):
        masks.blocks(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="blocks: array has 1 dimensions"):
        masks.blocks(np.ones(4, bool))
    with pytest.raises(ValueError, match="blocks: bq = 0 must be >= 1"):
        masks.blocks(np.ones((2, 2), bool), bq=0)
    with pytest.raises(TypeError, match="topk: scores has dtype f64; expected float32"):
        masks.topk(np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"heads\[1\] = 'longheads:chunk=256,k=16' cannot be"):
        masks.heads(["causal", masks.longheads()])
    with pytest.raises(ValueError, match="list of per-head specs is empty"):
        masks.heads([])
    with pytest.raises(polyhead.Error, match="moa_heads: alpha has 2 entries and beta 1"):
        masks.moa([1.0, 2.0], [0.5], 100)


def test_mask_does_not_fit_the_problem(rng):
    q, k, v = qkv(rng, b=1, sq=16, sk=16, hq=4, hkv=2)
    with pytest.raises(polyhead.Error, match="mask heads: has 2 specs but q has 4 heads"):
        polyhead.attention(q, k, v, mask="heads:causal|none")
    with pytest.raises(polyhead.Error, match="shape\\[1\\] = 1 query blocks"):
        polyhead.attention(q, k, v, mask=masks.blocks(np.ones((1, 2), bool), bq=8, bk=8))
    with pytest.raises(polyhead.Error, match="na"):
        polyhead.attention(q, k, v, mask=masks.neighborhood((4, 5), 3))  # 20 tokens, not 16


def test_wrong_types(rng):
    q, k, v = qkv(rng)
    with pytest.raises(TypeError, match="q must be a numpy.ndarray or a torch.Tensor, not list"):
        polyhead.attention(q.tolist(), k, v)
    with pytest.raises(TypeError, match="k must be a numpy.ndarray"):
        polyhead.attention(q, (1, 2), v)
    with pytest.raises(TypeError, match="q dtype int32 is not supported"):
        polyhead.attention(q.astype(np.int32), k.astype(np.int32), v.astype(np.int32))
    with pytest.raises(TypeError, match="k dtype float16 differs from q dtype float32"):
        polyhead.attention(q, k.astype(np.float16), v)
    with pytest.raises(TypeError, match="backend must be a str"):
        polyhead.attention(q, k, v, backend=None)
    with pytest.raises(TypeError, match="scale must be a number"):
        polyhead.attention(q, k, v, scale="0.5")
    with pytest.raises(TypeError, match="num_threads must be an int"):
        polyhead.attention(q, k, v, num_threads=1.0)
    with pytest.raises(ValueError, match="num_threads = -1 must be >= 0"):
        polyhead.attention(q, k, v, num_threads=-1)


def test_wrong_shapes(rng):
    q, k, v = qkv(rng, b=2, sq=7, sk=9, hq=4, hkv=2, dqk=16)
    with pytest.raises(ValueError, match=r"q has shape \(7, 4, 16\); expected rank 4"):
        polyhead.attention(q[0], k, v)
    with pytest.raises(polyhead.Error, match=r"k.shape\[3\] = 8 must equal q head dim 16"):
        polyhead.attention(q, k[..., :8], v)
    with pytest.raises(polyhead.Error, match=r"k.shape\[2\] = 3 does not divide q heads 4"):
        polyhead.attention(q, randn(rng, (2, 9, 3, 16)), randn(rng, (2, 9, 3, 16)))
    with pytest.raises(polyhead.Error, match=r"v.shape\[1\] = 8 must equal k.shape\[1\] = 9"):
        polyhead.attention(q, k, v[:, :8])
    with pytest.raises(polyhead.Error, match=r"k.shape\[0\] = 1 must equal q batch 2"):
        polyhead.attention(q, k[:1], v[:1])
    with pytest.raises(polyhead.Error, match=r"q.shape\[1\] = 0"):
        polyhead.attention(q[:, :0], k, v)


def test_bad_out(rng):
    q, k, v = qkv(rng)
    with pytest.raises(ValueError, match=r"out has shape \(2, 7, 4\); expected \(2, 7, 4, 16\)"):
        polyhead.attention(q, k, v, out=np.empty((2, 7, 4), np.float32))
    with pytest.raises(TypeError, match="out dtype int32 is not supported"):
        polyhead.attention(q, k, v, out=np.empty((2, 7, 4, 16), np.int32))
    ro = np.zeros((2, 7, 4, 16), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        polyhead.attention(q, k, v, out=ro)
    # Writing o over q: the library refuses and leaves both untouched.
    before = q.copy()
    with pytest.raises(polyhead.Error, match="o and q overlap in memory"):
        polyhead.attention(q, k, v[..., :16], out=q)
    np.testing.assert_array_equal(q, before)


def test_bad_options(rng):
    q, k, v = qkv(rng, b=1, sq=5, sk=5, hq=2, hkv=1)
    with pytest.raises(polyhead.Error, match="backend 'tpu' is not available in this build"):
        polyhead.attention(q, k, v, backend="tpu")
    with pytest.raises(polyhead.Error, match=r"alibi_slopes.shape\[0\] = 3 must equal q heads 2"):
        polyhead.attention(q, k, v, alibi=np.ones(3, np.float32))
    with pytest.raises(TypeError, match="sinks dtype float64 is not float32"):
        polyhead.attention(q, k, v, sinks=np.ones(2))
    with pytest.raises(polyhead.Error, match=r"sinks\[1\] = inf must be finite"):
        polyhead.attention(q, k, v, sinks=[0.0, float("inf")])
    with pytest.raises(ValueError, match="cu_seqlens_q and cu_seqlens_k are given together"):
        polyhead.attention(q, k, v, cu_seqlens_q=[0, 5])
    with pytest.raises(TypeError, match="cu_seqlens_q dtype int64 is not int32"):
        polyhead.attention(q, k, v, cu_seqlens_q=np.array([0, 5]), cu_seqlens_k=[0, 5])
    with pytest.raises(polyhead.Error, match=r"cu_seqlens_q\[1\] = 6 exceeds"):
        polyhead.attention(q, k, v, cu_seqlens_q=[0, 6], cu_seqlens_k=[0, 5])
    with pytest.raises(ValueError, match=r"k has shape \(1, 5, 1, 16\); expected rank 3"):
        polyhead.attention(q[0], k, v[0], cu_seqlens_q=[0, 5], cu_seqlens_k=[0, 5])


def test_unsupported_backend_reports_why(rng):
    q, k, v = qkv(rng, dtype=np.float64)
    if any(b.name == "cpu" for b in polyhead.backends()):
        ok, why = polyhead.supports(q, k, v, backend="cpu")
        assert not ok and "f64" in why
        with pytest.raises(polyhead.Error, match="backend 'cpu' does not support this problem"):
            polyhead.attention(q, k, v, backend="cpu")
    ok, why = polyhead.supports(q, k, v, backend="cuda")
    assert not ok and why
