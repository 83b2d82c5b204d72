"""PyTorch CPU tensors in and out, against torch.nn.functional.scaled_dot_product_attention.
Skipped where torch is not importable (it is no dependency of polyhead or of CI)."""

import numpy as np
import pytest

import oracle
import polyhead
from helpers import cpu_backends
from polyhead import masks

torch = pytest.importorskip("torch")
F = torch.nn.functional

BACKENDS = cpu_backends()


def sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    """SDPA in float32 on polyhead's [B, S, H, D] layout (GQA by repeating kv heads)."""
    group = q.shape[2] // k.shape[2]
    qt, kt, vt = (x.float().transpose(1, 2) for x in (q, k, v))
    kt, vt = kt.repeat_interleave(group, dim=1), vt.repeat_interleave(group, dim=1)
    if mask is not None:
        mask = torch.as_tensor(mask, device=q.device)
    o = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, is_causal=is_causal,
                                       scale=scale)
    return o.transpose(1, 2)


def rel(a, b):
    a, b = a.double(), b.double()
    assert not torch.isnan(a).any()
    return float((a - b).norm() / b.norm())


def make(b=2, sq=33, sk=47, hq=4, hkv=2, dqk=32, dv=None, dtype=torch.float32, device="cpu",
         seed=0):
    g = torch.Generator().manual_seed(seed)
    dv = dqk if dv is None else dv
    shapes = ((b, sq, hq, dqk), (b, sk, hkv, dqk), (b, sk, hkv, dv))
    return [torch.randn(s, generator=g).to(dtype=dtype, device=device) for s in shapes]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [dict(), dict(hq=8, hkv=1), dict(dqk=48, dv=16),
                                   dict(sq=1, sk=100)])
def test_dense_vs_sdpa(backend, shape):
    q, k, v = make(**shape)
    o = polyhead.attention(q, k, v, backend=backend)
    assert isinstance(o, torch.Tensor) and o.dtype == q.dtype and o.device == q.device
    assert rel(o, sdpa(q, k, v)) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sq,sk", [(40, 40), (20, 50)])
def test_causal_vs_sdpa(backend, sq, sk):
    q, k, v = make(sq=sq, sk=sk)
    # SDPA's is_causal is top-left aligned.
    o = polyhead.attention(q, k, v, mask=masks.causal(topleft=True), backend=backend)
    assert rel(o, sdpa(q, k, v, is_causal=True)) < 1e-5
    o = polyhead.attention(q, k, v, mask="causal", backend=backend)
    assert rel(o, sdpa(q, k, v, mask=oracle.causal_mask(sq, sk))) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask,dense", [
    (masks.window(8, 0), oracle.window_mask(40, 56, 8, 0)),
    (masks.window(4, 4, sink=2), oracle.window_mask(40, 56, 4, 4, sink=2)),
])
def test_windows_vs_sdpa(backend, mask, dense):
    q, k, v = make(sq=40, sk=56)
    assert rel(polyhead.attention(q, k, v, mask=mask, backend=backend),
               sdpa(q, k, v, mask=dense)) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_neighborhood_2d_vs_sdpa(backend):
    q, k, v = make(sq=48, sk=48)
    mask = masks.neighborhood((6, 8), (3, 5), dilation=(1, 1), causal=(False, True))
    dense = oracle.neighborhood_mask((6, 8), (3, 5), causal=(False, True))
    assert rel(polyhead.attention(q, k, v, mask=mask, backend=backend),
               sdpa(q, k, v, mask=dense)) < 1e-5


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 1.6e-2), (torch.float16, 2e-3)])
def test_half_dtypes(dtype, tol):
    q, k, v = make(dtype=dtype)
    ok, why = polyhead.supports(q, k, v)
    if not ok:
        pytest.skip(why)
    o = polyhead.attention(q, k, v, mask="causal")
    assert o.dtype == dtype
    assert rel(o, sdpa(q, k, v, mask=oracle.causal_mask(33, 47))) < tol


def test_lse_scale_and_sinks():
    q, k, v = make()
    sinks = torch.tensor([0.5, -0.5, 1.0, 0.0])
    o, lse = polyhead.attention(q, k, v, scale=0.2, sinks=sinks, return_lse=True)
    assert lse.dtype == torch.float32 and lse.shape == (2, 4, 33)
    group = q.shape[2] // k.shape[2]
    s = 0.2 * torch.einsum("bihd,bjhd->bhij", q.double(),
                           k.double().repeat_interleave(group, dim=2))
    s = torch.cat([s, sinks.double()[None, :, None, None].expand(2, 4, 33, 1)], dim=-1)
    assert torch.allclose(lse.double(), torch.logsumexp(s, dim=-1), atol=1e-5)
    ref, _ = oracle.attention(q.numpy(), k.numpy(), v.numpy(), scale=0.2, sinks=sinks.numpy())
    assert oracle.rel_l2(o.numpy(), ref) < 1e-5


def test_strided_views_and_out_identity():
    # BHSD storage, as SDPA keeps tensors, viewed as BSHD: no copies in, written in place out.
    qs, ks, vs = (x.transpose(1, 2).contiguous() for x in make())
    q, k, v = (x.transpose(1, 2) for x in (qs, ks, vs))
    assert not q.is_contiguous()
    o_store = torch.full((2, 4, 33, 32), float("nan"))
    out = o_store.transpose(1, 2)
    res = polyhead.attention(q, k, v, out=out, mask="causal")
    assert res is out and res.data_ptr() == o_store.data_ptr()
    assert rel(o_store.transpose(1, 2), sdpa(q, k, v, mask=oracle.causal_mask(33, 47))) < 1e-5


def test_requires_grad_inputs_are_read_without_copy():
    q, k, v = (x.requires_grad_() for x in make())
    o = polyhead.attention(q, k, v)
    assert not o.requires_grad
    assert rel(o, sdpa(q.detach(), k.detach(), v.detach())) < 1e-5


def test_torch_arrays_in_masks():
    q, k, v = make(sq=32, sk=32)
    bits = torch.rand(4, 4, 4, generator=torch.Generator().manual_seed(1)) < 0.5
    mask = masks.blocks(bits, bq=8, bk=8)
    dense = oracle.block_mask(bits.numpy(), 32, 32, 8, 8)
    o = polyhead.attention(q, k, v, mask=mask)
    ref, _ = oracle.attention(q.numpy(), k.numpy(), v.numpy(), mask=dense)
    assert oracle.rel_l2(o.numpy(), ref) < 1e-5
    scores = torch.randn(2, 32)
    o = polyhead.attention(q, k, v, mask=masks.topk(scores, k=4, window=8))
    assert o.shape == (2, 32, 4, 32)


def test_varlen_torch():
    cu_q = torch.tensor([0, 10, 25], dtype=torch.int32)
    cu_k = torch.tensor([0, 12, 40], dtype=torch.int32)
    q, k, v = make(b=1, sq=25, sk=40)
    o = polyhead.attention(q[0], k[0], v[0], mask="causal", cu_seqlens_q=cu_q,
                           cu_seqlens_k=cu_k)
    ref, _ = oracle.attention_varlen(q.numpy(), k.numpy(), v.numpy(), cu_q.numpy(),
                                     cu_k.numpy(), mask_fn=oracle.causal_mask)
    assert o.shape == (25, 4, 32) and oracle.rel_l2(o.numpy(), ref[0]) < 1e-5


def test_mixed_libraries_are_refused():
    q, k, v = make()
    with pytest.raises(TypeError, match="k is a numpy.ndarray but q is a torch.Tensor"):
        polyhead.attention(q, k.numpy(), v)
    with pytest.raises(TypeError, match="out is a numpy.ndarray but q is a torch.Tensor"):
        polyhead.attention(q, k, v, out=np.empty((2, 33, 4, 32), np.float32))
    with pytest.raises(TypeError, match="alibi dtype float64 is not float32"):
        polyhead.attention(q, k, v, alibi=torch.ones(4, dtype=torch.float64))
