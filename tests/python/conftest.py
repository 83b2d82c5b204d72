"""Shared fixtures. The module under test is whichever `polyhead` is importable: ctest sets
PYTHONPATH to the build tree and POLYHEAD_EXPECT_MODULE_DIR to check that it got that one."""

import os
import pathlib

import numpy as np
import pytest

import polyhead


def pytest_report_header(config):
    names = ", ".join(b.name for b in polyhead.backends())
    return f"polyhead {polyhead.version()} from {pathlib.Path(polyhead.__file__).parent} ({names})"


def pytest_configure(config):
    expected = os.environ.get("POLYHEAD_EXPECT_MODULE_DIR")
    if expected:
        got = pathlib.Path(polyhead.__file__).resolve().parent
        if got != pathlib.Path(expected).resolve():
            raise pytest.UsageError(f"imported polyhead from {got}, expected {expected}")


@pytest.fixture
def rng(request):
    """A generator seeded by the test's name, so every failure reproduces."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.name)) % (2**32)
    return np.random.default_rng(seed)

