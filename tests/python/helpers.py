"""Helpers shared by the test files: random inputs and the backends to run on."""

import numpy as np

import polyhead


def cpu_backends():
    """The host backends of this build: 'reference' always, 'cpu' where compiled in."""
    return [b.name for b in polyhead.backends() if b.name in ("cpu", "reference")]


def randn(rng, shape, dtype=np.float32):
    """Standard normal values of `dtype` (so the oracle sees exactly the rounded inputs)."""
    return rng.standard_normal(shape).astype(dtype)


def qkv(rng, b=2, sq=7, sk=9, hq=4, hkv=2, dqk=16, dv=None, dtype=np.float32):
    dv = dqk if dv is None else dv
    return (randn(rng, (b, sq, hq, dqk), dtype), randn(rng, (b, sk, hkv, dqk), dtype),
            randn(rng, (b, sk, hkv, dv), dtype))
