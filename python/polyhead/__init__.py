"""polyhead: multi-head attention (every head layout and sparsity pattern) on numpy arrays and
PyTorch tensors, CPU and CUDA, through DLPack without copies.

    import polyhead
    o = polyhead.attention(q, k, v, mask="causal")                     # q [B, Sq, Hq, D]
    o, lse = polyhead.attention(q, k, v, mask=polyhead.masks.window(128, 0), return_lse=True)

Refusals of the C++ library raise polyhead.Error (a RuntimeError) with the library's message;
wrong Python argument types raise TypeError and wrong values ValueError, naming the argument.
docs/python.md has the whole API.
"""

from . import masks
from ._api import (attention, backends, choose_backend, flops, info, supports, unmasked_pairs,
                   validate)
from ._polyhead import BackendInfo, BlockMap, Error, MaskSpec, load_npy, save_npy, version

__version__ = version()

__all__ = [
    "attention", "supports", "choose_backend", "validate", "unmasked_pairs", "flops", "backends",
    "info",
    "version", "masks", "MaskSpec", "BlockMap", "BackendInfo", "Error", "load_npy", "save_npy",
]
