"""Mask constructors. Each returns a polyhead.MaskSpec whose str() is the text form the CLI's
``--mask`` takes (``polyhead.masks.parse`` reads it back); ``polyhead.attention`` takes either.

The text kinds are built through the library's parser, so their checks and messages are the
library's own. Masks that hold arrays (``blocks``, ``topk``) keep a reference to the array,
not a copy: changing it later changes the mask.
"""

from __future__ import annotations

import numbers
from typing import Sequence, Union

from . import _arrays
from ._polyhead import MaskSpec, _block_mask, _per_head, _topk_mask, moa_heads

__all__ = [
    "MaskSpec", "parse", "none", "causal", "window", "neighborhood", "s2", "blocks", "slices",
    "heads", "moa", "longheads", "dhsa", "topk",
]

IntOrTuple = Union[int, Sequence[int]]


def parse(text: str) -> MaskSpec:
    """The mask of a text spec such as ``'causal'`` or ``'window:128,0,sink=4'``."""
    if not isinstance(text, str):
        raise TypeError(f"mask text must be a str, not {_arrays.type_name(text)}")
    return MaskSpec.parse(text)


def as_mask(mask, name: str = "mask") -> MaskSpec:
    """None, a text spec or a MaskSpec, as a MaskSpec."""
    if mask is None:
        return MaskSpec()
    if isinstance(mask, str):
        return MaskSpec.parse(mask)
    if isinstance(mask, MaskSpec):
        return mask
    raise TypeError(f"{name} must be None, a mask string such as 'causal' or a "
                    f"polyhead.MaskSpec, not {_arrays.type_name(mask)}")


def none() -> MaskSpec:
    """Every (query, key) pair is visible."""
    return MaskSpec()


def causal(topleft: bool = False) -> MaskSpec:
    """Key j is visible to query i when j <= pos(i); pos(i) = i + Sk - Sq (bottom-right, as in
    FlashAttention) or i with ``topleft=True``."""
    return MaskSpec.parse("causal:topleft" if topleft else "causal")


def window(left, right, topleft: bool = False, sink: int = 0) -> MaskSpec:
    """Keys pos(i) - left <= j <= pos(i) + right; -1 (or None) leaves a side unbounded. With
    ``sink=N`` the first N keys are visible too (still bounded on the right)."""
    left = -1 if left is None else _arrays.require_int(left, "window: left")
    right = -1 if right is None else _arrays.require_int(right, "window: right")
    sink = _arrays.require_int(sink, "window: sink")
    text = f"window:{left},{right}" + (f",sink={sink}" if sink else "")
    return MaskSpec.parse(text + (",topleft" if topleft else ""))


def _dims(value, name: str, rank: int | None) -> list[int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values = [int(value)] * (rank or 1)
    elif isinstance(value, (tuple, list)):
        values = [_arrays.require_int(v, name) for v in value]
    else:
        raise TypeError(f"{name} must be an int or a tuple of ints, not "
                        f"{_arrays.type_name(value)}")
    if rank is not None and len(values) != rank:
        raise ValueError(f"{name} = {tuple(values)} has {len(values)} dimensions but the grid "
                         f"has {rank}")
    return values


def neighborhood(grid: IntOrTuple, kernel: IntOrTuple, dilation: IntOrTuple = 1,
                 stride: IntOrTuple = 1, causal: bool | Sequence[bool] = False) -> MaskSpec:
    """Neighborhood attention (NATTEN's rule) over a row-major token grid of 1 to 3 dimensions;
    kernel, dilation, stride and causal are per dimension (a scalar applies to all)."""
    grid_dims = _dims(grid, "neighborhood: grid", None)
    rank = len(grid_dims)
    if isinstance(causal, bool):
        flags = [causal] * rank
    elif isinstance(causal, (tuple, list)) and all(isinstance(c, bool) for c in causal):
        flags = list(causal)
        if len(flags) != rank:
            raise ValueError(f"neighborhood: causal = {tuple(flags)} has {len(flags)} "
                             f"dimensions but the grid has {rank}")
    else:
        raise TypeError("neighborhood: causal must be a bool or a tuple of bools")

    def join(values):
        return "x".join(str(v) for v in values)

    return MaskSpec.parse(
        f"na:grid={join(grid_dims)},kernel={join(_dims(kernel, 'neighborhood: kernel', rank))}"
        f",dilation={join(_dims(dilation, 'neighborhood: dilation', rank))}"
        f",stride={join(_dims(stride, 'neighborhood: stride', rank))}"
        f",causal={join(int(c) for c in flags)}")


def s2(block: int = 64, local: int = 4, vstride: int = 4, offset: int = 0,
       dense_heads: int = 0, homo: bool = False) -> MaskSpec:
    """S2-Attention's per-head strided sharding (causal, at block granularity)."""
    fields = {name: _arrays.require_int(value, f"s2: {name}") for name, value in
              (("block", block), ("local", local), ("vstride", vstride), ("offset", offset),
               ("dense_heads", dense_heads))}
    text = "s2:" + ",".join(f"{k}={v}" for k, v in fields.items())
    return MaskSpec.parse(text + (",homo=1" if homo else ""))


def blocks(array, bq: int = 64, bk: int = 64) -> MaskSpec:
    """A user block mask: bool/uint8 [H or 1, ceil(Sq/bq), ceil(Sk/bk)] or [QB, KB] on the CPU
    (numpy or torch); a nonzero block makes its (i, j) pairs visible."""
    _arrays.require_array(array, "blocks: array")
    bq = _arrays.require_int(bq, "blocks: bq", 1)
    bk = _arrays.require_int(bk, "blocks: bk", 1)
    return _block_mask(_arrays.for_binding(array), bq, bk)


_SLICE_TYPES = ("full", "causal", "invcausal", "bicausal")


def slices(ranges: Sequence) -> MaskSpec:
    """MagiAttention's AttnSlice form: a list of (q_begin, q_end, k_begin, k_end, type) with type
    'full', 'causal' (bottom-right: j <= i + k_end - q_end), 'invcausal' (top-left:
    j >= i + k_begin - q_begin) or 'bicausal' (both); (i, j) is visible when a slice holds it."""
    if not isinstance(ranges, (list, tuple)) or not ranges:
        raise TypeError(f"slices: ranges must be a non-empty list of (q_begin, q_end, k_begin, "
                        f"k_end, type), not {_arrays.type_name(ranges)}")
    parts = []
    for n, r in enumerate(ranges):
        if not isinstance(r, (list, tuple)) or len(r) != 5:
            raise ValueError(f"slices[{n}] must be (q_begin, q_end, k_begin, k_end, type)")
        bounds = [_arrays.require_int(v, f"slices[{n}][{x}]") for x, v in enumerate(r[:4])]
        kind = r[4]
        if isinstance(kind, numbers.Integral) and 0 <= int(kind) < 4:
            kind = _SLICE_TYPES[int(kind)]
        if kind not in _SLICE_TYPES:
            raise ValueError(f"slices[{n}] type {kind!r} is not one of {', '.join(_SLICE_TYPES)}")
        parts.append(",".join(str(b) for b in bounds) + "," + kind)
    return MaskSpec.parse("slices:" + "|".join(parts))


def heads(specs: Sequence) -> MaskSpec:
    """One static spec per query head (text or MaskSpec each)."""
    if not isinstance(specs, (list, tuple)):
        raise TypeError(f"heads: specs must be a list of masks, not {_arrays.type_name(specs)}")
    return _per_head([as_mask(s, f"heads[{h}]") for h, s in enumerate(specs)])


def moa(alpha: Sequence[float], beta: Sequence[float], n_total: int, sink: int = 64,
        min_cache: int = 128, split: int = 64) -> MaskSpec:
    """MoA's elastic per-head windows: head h keeps min(alpha_h + beta_h * n_total, n_total)
    keys (at least min_cache, rounded up to split), the first `sink` of them sinks."""
    return moa_heads([float(a) for a in alpha], [float(b) for b in beta],
                     _arrays.require_int(n_total, "moa: n_total"),
                     _arrays.require_int(sink, "moa: sink"),
                     _arrays.require_int(min_cache, "moa: min_cache"),
                     _arrays.require_int(split, "moa: split"))


def longheads(chunk: int = 256, k: int = 16) -> MaskSpec:
    """LongHeads: per head and query, the top key chunks by q . mean(k_chunk) (causal)."""
    chunk = _arrays.require_int(chunk, "longheads: chunk")
    k = _arrays.require_int(k, "longheads: k")
    return MaskSpec.parse(f"longheads:chunk={chunk},k={k}")


def dhsa(chunk: int = 64, k: int = 8, recent: int = 64) -> MaskSpec:
    """DHSA: one chunk selection shared by all heads per query block (causal)."""
    chunk = _arrays.require_int(chunk, "dhsa: chunk")
    k = _arrays.require_int(k, "dhsa: k")
    recent = _arrays.require_int(recent, "dhsa: recent")
    return MaskSpec.parse(f"dhsa:chunk={chunk},k={k},recent={recent}")


def topk(scores, k: int = 64, window: int = 1024) -> MaskSpec:
    """DMA-style dynamic top-k: per kv head and query, the k best-scored keys among the causal
    window of `window` keys; scores float32 [Hkv, Sk] or [B, Hkv, Sk] on the CPU."""
    _arrays.require_array(scores, "topk: scores")
    k = _arrays.require_int(k, "topk: k", 1)
    window = _arrays.require_int(window, "topk: window", 1)
    return _topk_mask(_arrays.for_binding(scores), k, window)
