"""Array-library glue: which library an array comes from, its device and dtype, allocation of
outputs beside q, and the CUDA stream to run on.

numpy is a dependency; torch is never imported here: an object is a torch tensor only if the
caller has imported torch (looked up in sys.modules), so numpy users never pay for it.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")

_DTYPE_ALIASES = {
    "float32": "float32", "f32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "f16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float64": "float64", "f64": "float64", "fp64": "float64", "double": "float64",
}


def _torch():
    return sys.modules.get("torch")


def is_torch(x) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def is_array(x) -> bool:
    return isinstance(x, np.ndarray) or is_torch(x)


def library(x) -> str:
    """'numpy' or 'torch'."""
    return "torch" if is_torch(x) else "numpy"


def type_name(x) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def require_array(x, name: str) -> None:
    if not is_array(x):
        raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, not {type_name(x)}")


def device_of(x) -> str:
    """'cpu' or 'cuda:N'."""
    if not is_torch(x):
        return "cpu"
    dev = x.device
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        return f"cuda:{dev.index if dev.index is not None else 0}"
    raise ValueError(f"tensor on device '{dev}' is not supported (cpu or cuda)")


def dtype_of(x) -> str:
    """The dtype's name: 'float32', 'bfloat16', 'bool', 'int32', ..."""
    if is_torch(x):
        return str(x.dtype).removeprefix("torch.")
    return x.dtype.name


def dtype_name(d, name: str = "dtype") -> str:
    """A float dtype given as a string, a numpy dtype or a torch dtype, by its canonical name."""
    if isinstance(d, str):
        text = d
    elif _torch() is not None and isinstance(d, _torch().dtype):
        text = str(d).removeprefix("torch.")
    else:
        try:
            text = np.dtype(d).name
        except TypeError:
            raise TypeError(f"{name} {d!r} is not a dtype") from None
    canonical = _DTYPE_ALIASES.get(text)
    if canonical is None:
        raise TypeError(f"{name} {d!r} is not a float dtype ({', '.join(FLOAT_DTYPES)})")
    return canonical


def device_name(d, name: str = "device") -> str:
    """'cpu', 'cuda' or 'cuda:N' from a string or a torch.device."""
    text = str(d)
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return "cuda:0" if text == "cuda" else text
    raise ValueError(f"{name} {d!r} is not 'cpu', 'cuda' or 'cuda:N'")


def for_binding(x):
    """The object handed to C++ through DLPack: the array itself (a torch tensor detached
    from autograd, which DLPack refuses to export otherwise; no copy either way)."""
    if is_torch(x) and x.requires_grad:
        return x.detach()
    return x


def writable(x) -> bool:
    return bool(x.flags.writeable) if isinstance(x, np.ndarray) else True


def empty_like(ref, shape, dtype: str):
    """An uninitialized array of `shape` and `dtype` in ref's library, on ref's device."""
    if is_torch(ref):
        torch = _torch()
        return torch.empty(tuple(shape), dtype=getattr(torch, dtype), device=ref.device)
    if dtype == "bfloat16":
        raise TypeError("numpy has no bfloat16: pass torch tensors or another dtype")
    return np.empty(tuple(shape), dtype=np.dtype(dtype))


def as_vector(values, ref, dtype: str):
    """A list or tuple of numbers as a 1-D array of `dtype` in ref's library and device."""
    if is_torch(ref):
        torch = _torch()
        return torch.tensor(list(values), dtype=getattr(torch, dtype), device=ref.device)
    return np.asarray(values, dtype=np.dtype(dtype))


def unsqueeze0(x):
    """x with a leading dimension of 1 (a view)."""
    return x.unsqueeze(0) if is_torch(x) else x[None]


def current_stream(x) -> int:
    """The cudaStream_t (as an integer) PyTorch's current stream on x's device; 0 otherwise."""
    if is_torch(x) and x.device.type == "cuda":
        return int(_torch().cuda.current_stream(x.device).cuda_stream)
    return 0


def require_int(value, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, not {type_name(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} = {value} must be >= {minimum}")
    return value
