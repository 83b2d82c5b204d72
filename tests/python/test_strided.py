"""Strided inputs and outputs go through as views: transposed, sliced, reversed and broadcast
arrays give the oracle's answer, `out` is written in place, and nothing is copied."""

import tracemalloc

import numpy as np
import pytest

import oracle
import polyhead
from helpers import cpu_backends, randn

BACKENDS = cpu_backends()


@pytest.mark.parametrize("backend", BACKENDS)
def test_transposed_bhsd_views(rng, backend):
    # Tensors stored [B, H, S, D] (as SDPA keeps them), viewed as [B, S, H, D].
    qs, ks, vs = randn(rng, (2, 4, 9, 16)), randn(rng, (2, 2, 13, 16)), randn(rng, (2, 2, 13, 8))
    q, k, v = (x.transpose(0, 2, 1, 3) for x in (qs, ks, vs))
    assert not q.flags.c_contiguous
    o_store = np.full((2, 4, 9, 8), np.nan, np.float32)
    out = o_store.transpose(0, 2, 1, 3)
    res, lse = polyhead.attention(q, k, v, mask="causal", out=out, backend=backend,
                                  return_lse=True)
    assert res is out and np.shares_memory(res, o_store)
    ref_o, ref_lse = oracle.attention(q, k, v, mask=oracle.causal_mask(9, 13))
    assert oracle.rel_l2(o_store.transpose(0, 2, 1, 3), ref_o) < 1e-5
    oracle.assert_lse_close(lse, ref_lse)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sliced_reversed_and_packed_qkv(rng, backend):
    # One packed [B, S, 3, H, D] buffer split into q, k, v; the key order reversed; and the
    # head dimension strided (every other element).
    qkv = randn(rng, (2, 11, 3, 4, 32))
    q, k, v = qkv[:, :, 0, :, ::2], qkv[:, ::-1, 1, :, ::2], qkv[:, ::-1, 2]
    assert q.strides[3] == 8 and k.strides[1] < 0
    ref, _ = oracle.attention(q, k, v)
    ok, why = polyhead.supports(q, k, v, backend=backend)
    if not ok:
        pytest.skip(why)
    assert oracle.rel_l2(polyhead.attention(q, k, v, backend=backend), ref) < 1e-5


def test_out_and_lse_are_fresh_arrays_otherwise(rng):
    q, k, v = randn(rng, (1, 5, 2, 8)), randn(rng, (1, 6, 2, 8)), randn(rng, (1, 6, 2, 4))
    o, lse = polyhead.attention(q, k, v, return_lse=True)
    assert isinstance(o, np.ndarray) and o.flags.c_contiguous and o.shape == (1, 5, 2, 4)
    assert not np.shares_memory(o, q) and lse.dtype == np.float32


def test_out_in_a_larger_buffer(rng):
    q, k, v = randn(rng, (1, 7, 2, 16)), randn(rng, (1, 7, 1, 16)), randn(rng, (1, 7, 1, 16))
    buffer = np.full((1, 7, 4, 16), 7.0, np.float32)  # o goes into heads 1 and 3 only
    out = buffer[:, :, 1::2]
    assert polyhead.attention(q, k, v, out=out) is out
    ref, _ = oracle.attention(q, k, v)
    assert oracle.rel_l2(buffer[:, :, 1::2], ref) < 1e-5
    assert np.all(buffer[:, :, 0::2] == 7.0)  # nothing outside `out` was written


def test_no_copy_of_large_broadcast_inputs(rng):
    # k and v are 64 MiB each as logical arrays but one row in memory (stride 0). A copy
    # anywhere on the way to C++ would show in numpy's traced allocations.
    sk, d = 1 << 20, 16
    row = randn(rng, (1, 1, 1, d))
    k = np.broadcast_to(row, (1, sk, 1, d))
    v = np.broadcast_to(row, (1, sk, 1, d))
    q = randn(rng, (1, 1, 1, d))
    tracemalloc.start()
    try:
        o = polyhead.attention(q, k, v, mask=polyhead.masks.window(16, 0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated: an input was copied"
    np.testing.assert_allclose(o[0, 0, 0], row[0, 0, 0], rtol=1e-5)  # all values equal
