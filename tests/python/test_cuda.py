"""PyTorch CUDA tensors in and out on the cuda backend: results against SDPA on the GPU, `out`
written in place (data_ptr identity), torch's current stream. Skipped without torch, without a
GPU, in builds without the cuda backend, and per case where the backend does not support it."""

import pytest

import oracle
import polyhead
from polyhead import masks

torch = pytest.importorskip("torch")
F = torch.nn.functional

if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU visible to torch", allow_module_level=True)
if "cuda" not in [b.name for b in polyhead.backends()]:
    pytest.skip("this polyhead build has no cuda backend", allow_module_level=True)

TOL = {torch.bfloat16: 1.6e-2, torch.float16: 2e-3, torch.float32: 1e-5}


def make(b=2, sq=200, sk=300, hq=8, hkv=2, dqk=64, dv=None, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    dv = dqk if dv is None else dv
    shapes = ((b, sq, hq, dqk), (b, sk, hkv, dqk), (b, sk, hkv, dv))
    return [torch.randn(s, generator=g, device="cuda").to(dtype) for s in shapes]


def sdpa(q, k, v, mask=None):
    """float32 SDPA on the GPU, on polyhead's [B, S, H, D] layout."""
    group = q.shape[2] // k.shape[2]
    qt, kt, vt = (x.float().transpose(1, 2) for x in (q, k, v))
    kt, vt = kt.repeat_interleave(group, dim=1), vt.repeat_interleave(group, dim=1)
    if mask is not None:
        mask = torch.as_tensor(mask, device=q.device)
    return F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask).transpose(1, 2)


def rel(a, b):
    a, b = a.double(), b.double()
    assert not torch.isnan(a).any()
    return float((a - b).norm() / b.norm())


def require_cuda(*args, **kw):
    ok, why = polyhead.supports(*args, backend="cuda", **kw)
    if not ok:
        pytest.skip(f"cuda backend: {why}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("mask,dense", [
    (None, None),
    ("causal", oracle.causal_mask(200, 300)),
    (masks.window(64, 0), oracle.window_mask(200, 300, 64, 0)),
])
@pytest.mark.parametrize("dqk", [64, 128])
def test_vs_sdpa(dtype, mask, dense, dqk):
    q, k, v = make(dtype=dtype, dqk=dqk)
    require_cuda(q, k, v, mask=mask)
    o = polyhead.attention(q, k, v, mask=mask, backend="cuda")
    assert o.device == q.device and o.dtype == dtype and o.shape == q.shape
    assert rel(o, sdpa(q, k, v, dense)) < TOL[dtype]


def test_out_in_place_and_lse():
    q, k, v = make()
    # BHSD storage viewed as BSHD: the head dimension stays contiguous.
    o_store = torch.full((2, 8, 200, 64), float("nan"), dtype=torch.bfloat16, device="cuda")
    out = o_store.transpose(1, 2)
    require_cuda(q, k, v, mask="causal", return_lse=True)
    res, lse = polyhead.attention(q, k, v, mask="causal", out=out, return_lse=True,
                                  backend="cuda")
    assert res is out and res.data_ptr() == o_store.data_ptr()
    assert lse.device == q.device and lse.dtype == torch.float32 and lse.shape == (2, 8, 200)
    dense = torch.as_tensor(oracle.causal_mask(200, 300), device="cuda")
    assert rel(o_store.transpose(1, 2), sdpa(q, k, v, dense)) < TOL[torch.bfloat16]
    s = torch.einsum("bihd,bjhd->bhij", q.float(), k.float().repeat_interleave(4, dim=2))
    s = (s * 64 ** -0.5).masked_fill(~dense, float("-inf"))
    assert torch.allclose(lse, torch.logsumexp(s, dim=-1), atol=2e-2)


def test_strided_inputs_without_copies():
    # q, k, v sliced out of one packed [B, S, 3, H, D] projection.
    qkv = torch.randn(2, 200, 3, 8, 64, device="cuda", dtype=torch.float16)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    require_cuda(q, k, v)
    out = torch.empty(2, 200, 8, 64, device="cuda", dtype=torch.float16)
    assert polyhead.attention(q, k, v, out=out, backend="cuda").data_ptr() == out.data_ptr()
    assert rel(out, sdpa(q, k, v)) < TOL[torch.float16]


def test_runs_on_the_current_stream():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        # Inputs made on `stream` just before: running elsewhere would race with their writes.
        q, k, v = (x * 1.0 for x in make(sq=2048, sk=2048, hq=8, hkv=8))
        require_cuda(q, k, v)
        o = polyhead.attention(q, k, v, backend="cuda")
        ref = sdpa(q, k, v)
    stream.synchronize()
    assert rel(o, ref) < TOL[torch.bfloat16]


@pytest.mark.parametrize("device_cu", [True, False])
def test_varlen(device_cu):
    cu_q = torch.tensor([0, 100, 100, 350], dtype=torch.int32)
    cu_k = torch.tensor([0, 120, 200, 500], dtype=torch.int32)
    if device_cu:
        cu_q, cu_k = cu_q.cuda(), cu_k.cuda()
    q, k, v = make(b=1, sq=350, sk=500)
    require_cuda(q[0], k[0], v[0], mask="causal", cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)
    o = polyhead.attention(q[0], k[0], v[0], mask="causal", cu_seqlens_q=cu_q,
                           cu_seqlens_k=cu_k, backend="cuda")
    ref, _ = oracle.attention_varlen(q.float().cpu().numpy(), k.float().cpu().numpy(),
                                     v.float().cpu().numpy(), cu_q.cpu().numpy(),
                                     cu_k.cpu().numpy(), mask_fn=oracle.causal_mask)
    assert oracle.rel_l2(o.float().cpu().numpy(), ref[0]) < TOL[torch.bfloat16]


def test_auto_picks_cuda_and_device_errors():
    q, k, v = make()
    ok, _ = polyhead.supports(q, k, v, backend="cuda")
    if ok:
        assert polyhead.choose_backend(q, k, v) == "cuda"
    with pytest.raises(ValueError, match="k is on cpu but q is on cuda:0"):
        polyhead.attention(q, k.cpu(), v)
    with pytest.raises(ValueError, match="out is on cpu but q is on cuda:0"):
        polyhead.attention(q, k, v, out=torch.empty(q.shape, dtype=q.dtype))
