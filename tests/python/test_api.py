"""The rest of the public API: info, backends, supports and choose_backend, pair and FLOP
counts from shapes or arrays, and .npy files."""

import numpy as np
import pytest

import oracle
import polyhead
from helpers import cpu_backends, qkv, randn
from polyhead import masks


def test_info_and_version():
    info = polyhead.info()
    assert info["version"] == polyhead.version() == polyhead.__version__
    names = [b["name"] for b in info["backends"]]
    assert "reference" in names and names[-1] == "reference"  # the oracle is tried last
    for b in info["backends"]:
        assert set(b) == {"name", "available", "description"} and b["description"]
    ref = next(b for b in polyhead.backends() if b.name == "reference")
    assert ref.available and "BackendInfo(name='reference'" in repr(ref)


def test_supports_and_choose_from_shapes():
    q, k, v = (2, 128, 8, 64), (2, 256, 2, 64), (2, 256, 2, 64)
    best = cpu_backends()[0]
    assert polyhead.supports(q, k, v) == (True, "")
    assert polyhead.supports(q, k, v, backend="reference") == (True, "")
    assert polyhead.choose_backend(q, k, v, mask="causal") == best
    assert polyhead.choose_backend(q, k, v, dtype="float64") == "reference"
    ok, why = polyhead.supports(q, k, v, backend="nonesuch")
    assert not ok and "not available in this build" in why
    ok, why = polyhead.supports(q, k, v, device="cuda:0")
    if "cuda" not in [b.name for b in polyhead.backends()]:
        assert not ok and why.startswith("no backend supports this problem")
        assert "reference: tensors are on cuda:0" in why
    with pytest.raises(polyhead.Error, match="k.shape\\[2\\] = 3 does not divide"):
        polyhead.supports(q, (2, 256, 3, 64), v)
    with pytest.raises(TypeError, match="dtype 'int8' is not a float dtype"):
        polyhead.supports(q, k, v, dtype="int8")
    with pytest.raises(ValueError, match="device 'gpu' is not 'cpu'"):
        polyhead.supports(q, k, v, device="gpu")


def test_validate():
    sizes = polyhead.validate((2, 10, 8, 64), (2, 30, 2, 64), (2, 30, 2, 32), scale=0.5)
    assert sizes == dict(batch=2, seqlen_q=10, seqlen_k=30, heads_q=8, heads_kv=2, head_dim_qk=64,
                         head_dim_v=32, varlen=False, scale=0.5)
    packed = polyhead.validate((9, 4, 16), (12, 4, 16), (12, 4, 16), cu_seqlens_q=[0, 2, 9],
                               cu_seqlens_k=[0, 10, 12])
    assert packed["varlen"] and packed["batch"] == 2 and packed["seqlen_q"] == 7
    assert packed["seqlen_k"] == 10 and packed["scale"] == pytest.approx(0.25)
    with pytest.raises(polyhead.Error, match=r"v.shape\[0\] = 1 must equal k.shape\[0\] = 2"):
        polyhead.validate((2, 10, 8, 64), (2, 30, 2, 64), (1, 30, 2, 32))


def test_supports_with_arrays_matches_attention(rng):
    q, k, v = qkv(rng)
    for backend in cpu_backends():
        assert polyhead.supports(q, k, v, mask="causal", return_lse=True, backend=backend)[0]
    # numpy dtypes and aliases are accepted for shape-only questions.
    for dtype in (np.float16, "bf16", "half", "float64"):
        assert polyhead.supports(q.shape, k.shape, v.shape, dtype=dtype, backend="reference")[0]


@pytest.mark.parametrize("mask,pairs_per_head", [
    (None, 16 * 16),
    ("causal", 16 * 17 // 2),
    ("window:2,0", 16 * 3 - 3),
    (masks.neighborhood((4, 4), 3), 16 * 9),
])
def test_pairs_and_flops_from_shapes(mask, pairs_per_head):
    q, k, v = (3, 16, 4, 32), (3, 16, 2, 32), (3, 16, 2, 16)
    pairs = polyhead.unmasked_pairs(q, k, v, mask=mask)
    assert pairs == 3 * 4 * pairs_per_head
    assert polyhead.flops(q, k, v, mask=mask) == 2.0 * (32 + 16) * pairs


def test_pairs_varlen_and_arrays(rng):
    cu_q, cu_k = [0, 3, 10], [0, 4, 12]
    q, k, v = (10, 2, 8), (12, 1, 8), (12, 1, 8)  # packed rank-3 shapes
    want = 2 * (oracle.causal_mask(3, 4).sum() + oracle.causal_mask(7, 8).sum())
    assert polyhead.unmasked_pairs(q, k, v, mask="causal", cu_seqlens_q=cu_q,
                                   cu_seqlens_k=cu_k) == want
    qa, ka, va = randn(rng, q), randn(rng, k), randn(rng, v)
    assert polyhead.unmasked_pairs(qa, ka, va, mask="causal", cu_seqlens_q=cu_q,
                                   cu_seqlens_k=cu_k) == want


def test_dynamic_masks_need_arrays(rng):
    shape = (1, 32, 2, 16)
    with pytest.raises(ValueError, match="selects keys from the data: pass q and k as arrays"):
        polyhead.unmasked_pairs(shape, shape, shape, mask=masks.longheads(chunk=8, k=3))
    q = randn(rng, shape)
    assert 0 < polyhead.unmasked_pairs(q, q, q, mask=masks.longheads(chunk=8, k=3)) < 2 * 32 * 33


def test_npy_round_trip(tmp_path, rng):
    for dtype in (np.float32, np.float64, np.float16, np.int32, np.uint8):
        a = (rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
        view = a.transpose(2, 0, 1)[::-1]  # any strides
        path = str(tmp_path / f"a_{np.dtype(dtype).name}.npy")
        polyhead.save_npy(path, view)
        np.testing.assert_array_equal(np.load(path), view)
        back = polyhead.load_npy(path)
        assert back.dtype == dtype and back.flags.c_contiguous
        np.testing.assert_array_equal(back, view)
    np.save(tmp_path / "f.npy", np.asfortranarray(rng.standard_normal((3, 5))))
    f = np.load(tmp_path / "f.npy")
    np.testing.assert_array_equal(polyhead.load_npy(str(tmp_path / "f.npy")), f)
    with pytest.raises(polyhead.Error, match="nonexistent"):
        polyhead.load_npy(str(tmp_path / "nonexistent.npy"))


def test_mask_spec_properties(rng):
    assert masks.causal().kind == "causal" and not masks.causal().is_dynamic
    assert masks.window(4, 0).kind == "window" and masks.window(4, 0).heads is None
    assert masks.topk(randn(rng, (2, 8))).is_dynamic
    spec = masks.heads(["causal", "none"])
    assert [str(h) for h in spec.heads] == ["causal", "none"]
    assert str(masks.blocks(np.ones((2, 3), bool))).startswith("blocks:<tensor [1, 2, 3] u8")
