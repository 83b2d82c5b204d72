"""The user-facing functions: attention, supports, choose_backend, validate, unmasked_pairs,
flops, info.

Each checks its Python arguments (TypeError / ValueError naming the argument), allocates the
outputs in q's array library on q's device, and hands views to the C++ library, which does
every other check (polyhead.Error) and never copies.
"""

from __future__ import annotations

import numbers

from . import _arrays, _polyhead
from .masks import as_mask

_LAYOUT = {"q": "[B, Sq, Hq, Dqk]", "k": "[B, Sk, Hkv, Dqk]", "v": "[B, Sk, Hkv, Dv]"}
_PACKED = {"q": "[total_q, Hq, Dqk]", "k": "[total_k, Hkv, Dqk]", "v": "[total_k, Hkv, Dv]"}


class _Operand:
    """q, k or v: an array, or only a shape (for questions that do not read data)."""

    def __init__(self, x, name: str, allow_shape: bool):
        self.name = name
        if _arrays.is_array(x):
            self.array, self.shape = x, tuple(int(s) for s in x.shape)
        elif allow_shape and isinstance(x, (tuple, list)):
            self.array = None
            self.shape = tuple(_arrays.require_int(s, f"{name} shape entry") for s in x)
        else:
            what = ("a numpy.ndarray, a torch.Tensor or a shape tuple" if allow_shape
                    else "a numpy.ndarray or a torch.Tensor")
            raise TypeError(f"{name} must be {what}, not {_arrays.type_name(x)}")


def _check_operands(ops, packed: bool) -> None:
    rank = 3 if packed else 4
    for op in ops:
        if len(op.shape) != rank:
            layout = (_PACKED if packed else _LAYOUT)[op.name]
            hint = " (rank 3 is the packed layout, with cu_seqlens)" if not packed else ""
            raise ValueError(f"{op.name} has shape {op.shape}; expected rank {rank} {layout}{hint}")
    arrays = [op for op in ops if op.array is not None]
    if not arrays:
        return
    first = arrays[0]
    lib, dev, dt = (_arrays.library(first.array), _arrays.device_of(first.array),
                    _arrays.dtype_of(first.array))
    if dt not in _arrays.FLOAT_DTYPES:
        raise TypeError(f"{first.name} dtype {dt} is not supported "
                        f"({', '.join(_arrays.FLOAT_DTYPES)})")
    for op in arrays[1:]:
        if _arrays.library(op.array) != lib:
            raise TypeError(f"{op.name} is a {_arrays.type_name(op.array)} but {first.name} is a "
                            f"{_arrays.type_name(first.array)}; q, k and v come from one library")
        if _arrays.device_of(op.array) != dev:
            raise ValueError(f"{op.name} is on {_arrays.device_of(op.array)} but {first.name} is "
                             f"on {dev}; q, k and v must be on one device")
        if _arrays.dtype_of(op.array) != dt:
            raise TypeError(f"{op.name} dtype {_arrays.dtype_of(op.array)} differs from "
                            f"{first.name} dtype {dt}; q, k and v share one dtype")


def _vector(values, name: str, ref, dtype: str, device: str):
    """A per-head vector (alibi, sinks) or cu_seqlens: arrays as given; lists converted."""
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        if dtype == "int32":  # cu_seqlens may stay on the host for any device
            return _arrays.as_vector(values, None, dtype)
        return _arrays.as_vector(values, ref, dtype)
    _arrays.require_array(values, name)
    if _arrays.dtype_of(values) != dtype:
        raise TypeError(f"{name} dtype {_arrays.dtype_of(values)} is not {dtype}")
    here = _arrays.device_of(values)
    if here != device and not (dtype == "int32" and here == "cpu"):
        raise ValueError(f"{name} is on {here} but q is on {device}")
    return values


def _build(q, k, v, *, mask, scale, softcap, alibi, sinks, cu_seqlens_q, cu_seqlens_k,
           allow_shapes=False, dtype=None, device=None):
    """The C++ problem for q, k, v and the options, without o and lse; and its facts."""
    ops = [_Operand(x, n, allow_shapes) for x, n in ((q, "q"), (k, "k"), (v, "v"))]
    if (cu_seqlens_q is None) != (cu_seqlens_k is None):
        raise ValueError("cu_seqlens_q and cu_seqlens_k are given together or not at all")
    packed = cu_seqlens_q is not None and len(ops[0].shape) == 3
    _check_operands(ops, packed)

    ref = next((op.array for op in ops if op.array is not None), None)
    if ref is not None:
        dtype, device = _arrays.dtype_of(ref), _arrays.device_of(ref)
    else:
        dtype = _arrays.dtype_name(dtype if dtype is not None else "float32")
        device = _arrays.device_name(device if device is not None else "cpu")

    problem = _polyhead.Problem()
    for op in ops:
        if op.array is None:
            shape = (1,) + op.shape if packed else op.shape
            problem.set_placeholder(op.name, list(shape), dtype, device)
        else:
            x = _arrays.unsqueeze0(op.array) if packed else op.array
            problem.set_input(op.name, _arrays.for_binding(x))

    for name, values, arg, kind in (("alibi_slopes", alibi, "alibi", "float32"),
                                    ("sinks", sinks, "sinks", "float32"),
                                    ("cu_seqlens_q", cu_seqlens_q, "cu_seqlens_q", "int32"),
                                    ("cu_seqlens_k", cu_seqlens_k, "cu_seqlens_k", "int32")):
        array = _vector(values, arg, ref, kind, device)
        if array is not None:
            problem.set_input(name, _arrays.for_binding(array))

    if scale is not None:
        if not isinstance(scale, numbers.Real):
            raise TypeError(f"scale must be a number or None, not {_arrays.type_name(scale)}")
        problem.scale = float(scale)
    if softcap is not None:
        if not isinstance(softcap, numbers.Real):
            raise TypeError(f"softcap must be a number or None, not {_arrays.type_name(softcap)}")
        problem.softcap = float(softcap)
    problem.mask = as_mask(mask)

    b, sq, hq, _ = (1,) + ops[0].shape if packed else ops[0].shape
    dv = ops[2].shape[-1]
    facts = dict(packed=packed, dtype=dtype, device=device, ref=ref,
                 o_shape=(sq, hq, dv) if packed else (b, sq, hq, dv),
                 lse_shape=(hq, sq) if packed else (b, hq, sq))
    return problem, facts


def _placeholder_outputs(problem, facts, return_lse: bool, out_dtype) -> None:
    dtype = facts["dtype"] if out_dtype is None else _arrays.dtype_name(out_dtype, "out_dtype")
    lead = (1,) if facts["packed"] else ()
    problem.set_placeholder("o", list(lead + facts["o_shape"]), dtype, facts["device"])
    if return_lse:
        problem.set_placeholder("lse", list(lead + facts["lse_shape"]), "float32",
                                facts["device"])


def _check_out(out, q, shape) -> None:
    _arrays.require_array(out, "out")
    if _arrays.library(out) != _arrays.library(q):
        raise TypeError(f"out is a {_arrays.type_name(out)} but q is a {_arrays.type_name(q)}")
    if _arrays.device_of(out) != _arrays.device_of(q):
        raise ValueError(f"out is on {_arrays.device_of(out)} but q is on {_arrays.device_of(q)}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}; expected {tuple(shape)}")
    if _arrays.dtype_of(out) not in _arrays.FLOAT_DTYPES:
        raise TypeError(f"out dtype {_arrays.dtype_of(out)} is not supported "
                        f"({', '.join(_arrays.FLOAT_DTYPES)})")
    if not _arrays.writable(out):
        raise ValueError("out is read-only")


def attention(q, k, v, *, mask=None, scale=None, softcap=None, alibi=None, sinks=None,
              cu_seqlens_q=None, cu_seqlens_k=None, return_lse=False, backend="auto", out=None,
              num_threads=0):
    """Multi-head attention o = softmax(scale * q k^T + bias, masked) v (DESIGN.md section 2).

    q [B, Sq, Hq, Dqk], k [B, Sk, Hkv, Dqk], v [B, Sk, Hkv, Dv]: numpy arrays or torch tensors
    (CPU or CUDA) of one float dtype, any strides, never copied. Packed variable-length
    batches give cu_seqlens_q/k (int32 [nseq + 1]) with B = 1, or rank-3 q, k, v
    [total, H, D]. Returns o [B, Sq, Hq, Dv] (q's library, device and dtype; or `out`, written
    in place) and, with return_lse, also lse float32 [B, Hq, Sq] ([Hq, total_q] when packed).
    torch CUDA tensors run on torch.cuda.current_stream().
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, not {_arrays.type_name(backend)}")
    num_threads = _arrays.require_int(num_threads, "num_threads", 0)
    problem, facts = _build(q, k, v, mask=mask, scale=scale, softcap=softcap, alibi=alibi,
                            sinks=sinks, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k)
    if out is None:
        o = _arrays.empty_like(q, facts["o_shape"], facts["dtype"])
    else:
        _check_out(out, q, facts["o_shape"])
        o = out
    lse = _arrays.empty_like(q, facts["lse_shape"], "float32") if return_lse else None
    packed = facts["packed"]
    problem.set_output("o", _arrays.unsqueeze0(o) if packed else o)
    if lse is not None:
        problem.set_output("lse", _arrays.unsqueeze0(lse) if packed else lse)
    _polyhead.attention(problem, backend, _arrays.current_stream(q), num_threads)
    return (o, lse) if return_lse else o


def _question(q, k, v, *, return_lse=False, out_dtype=None, dtype=None, device=None,
              **options):
    """The problem attention(q, k, v, **options) would run, with outputs that are only shapes."""
    problem, facts = _build(q, k, v, allow_shapes=True, dtype=dtype, device=device, **options)
    _placeholder_outputs(problem, facts, return_lse, out_dtype)
    return problem


def supports(q, k, v, *, mask=None, scale=None, softcap=None, alibi=None, sinks=None,
             cu_seqlens_q=None, cu_seqlens_k=None, return_lse=False, out_dtype=None,
             backend="auto", dtype=None, device=None):
    """(True, '') if `backend` can run this attention, else (False, why). q, k, v are arrays or
    shape tuples (then `dtype` and `device` describe them; defaults float32, cpu); out_dtype is
    the dtype `out` would have (default q's). Invalid problems raise polyhead.Error, as
    attention would."""
    problem = _question(q, k, v, mask=mask, scale=scale, softcap=softcap, alibi=alibi,
                        sinks=sinks, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k,
                        return_lse=return_lse, out_dtype=out_dtype, dtype=dtype, device=device)
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, not {_arrays.type_name(backend)}")
    if backend != "auto":
        return _polyhead.supports(problem, backend)
    reasons = []
    for b in _polyhead.backends():  # the order "auto" tries them
        ok, why = _polyhead.supports(problem, b.name)
        if ok:
            return True, ""
        reasons.append(f"{b.name}: {why}")
    return False, "no backend supports this problem; " + "; ".join(reasons)


def choose_backend(q, k, v, *, mask=None, scale=None, softcap=None, alibi=None, sinks=None,
                   cu_seqlens_q=None, cu_seqlens_k=None, return_lse=False, out_dtype=None,
                   dtype=None, device=None) -> str:
    """The backend attention(..., backend='auto') would run (arguments as for supports)."""
    return _polyhead.choose_backend(_question(
        q, k, v, mask=mask, scale=scale, softcap=softcap, alibi=alibi, sinks=sinks,
        cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, return_lse=return_lse,
        out_dtype=out_dtype, dtype=dtype, device=device))


def validate(q, k, v, *, mask=None, scale=None, softcap=None, alibi=None, sinks=None,
             cu_seqlens_q=None, cu_seqlens_k=None, return_lse=False, out_dtype=None,
             dtype=None, device=None) -> dict:
    """Checks every argument as attention would (polyhead.Error naming the first bad one) and
    returns the resolved sizes: batch, seqlen_q, seqlen_k (the longest for varlen), heads_q,
    heads_kv, head_dim_qk, head_dim_v, varlen, scale. Arguments as for supports."""
    return _polyhead.validate(_question(
        q, k, v, mask=mask, scale=scale, softcap=softcap, alibi=alibi, sinks=sinks,
        cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, return_lse=return_lse,
        out_dtype=out_dtype, dtype=dtype, device=device))


def _counting_problem(q, k, v, mask, cu_seqlens_q, cu_seqlens_k):
    return _question(q, k, v, mask=mask, scale=None, softcap=None, alibi=None, sinks=None,
                     cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k)


def unmasked_pairs(q, k, v, *, mask=None, cu_seqlens_q=None, cu_seqlens_k=None) -> int:
    """Visible (i, j) pairs summed over batch and query heads. q, k, v are arrays or shapes
    (data-dependent masks need arrays); cu_seqlens must be on the host."""
    return _polyhead.unmasked_pairs(_counting_problem(q, k, v, mask, cu_seqlens_q, cu_seqlens_k))


def flops(q, k, v, *, mask=None, cu_seqlens_q=None, cu_seqlens_k=None) -> float:
    """Forward FLOPs 2 * (Dqk + Dv) * unmasked_pairs (DESIGN.md section 2)."""
    return _polyhead.forward_flops(_counting_problem(q, k, v, mask, cu_seqlens_q, cu_seqlens_k))


def backends():
    """Every backend compiled in (name, available, description), in the order 'auto' tries."""
    return _polyhead.backends()


def info() -> dict:
    """The library version and its backends, with availability and description."""
    return {
        "version": _polyhead.version(),
        "backends": [{"name": b.name, "available": b.available, "description": b.description}
                     for b in _polyhead.backends()],
    }
