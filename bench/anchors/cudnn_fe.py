"""cuDNN's fused attention through the cuDNN frontend's graph API, for the masks that PyTorch's
CUDNN_ATTENTION backend cannot pass on (a causal sliding window).

PyTorch's SDPA takes only is_causal or a dense attn_mask, so the cuDNN number beside our window
case has to come from the frontend (`sliding_window_length`). The GPU machine has cuDNN (inside
PyTorch) but not the frontend's Python module; scripts/prepare-device-deps stages the wheel's
contents into .deps/cudnn-frontend, and gpu-check puts that folder on PYTHONPATH.

Each graph is checked against an fp32 evaluation of the same rows before it is timed, so a
window convention that differs from ours (keys [i - window + 1, i]) is reported, not timed.
"""
import math
import os
import sys

import torch


def load():
    """Imports the frontend against the libcudnn that PyTorch has loaded; None when absent."""
    torch.backends.cudnn.version()  # makes PyTorch load libcudnn
    libdirs = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "/libcudnn.so" in path and os.path.dirname(path) not in libdirs:
                libdirs.append(os.path.dirname(path))
    if libdirs:  # the frontend's loader looks in LD_LIBRARY_PATH first
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(
            libdirs + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    try:
        import cudnn
    except Exception as e:  # absent, or present but unable to load libcudnn: no such peer
        print(f"cudnn_fe: no cuDNN frontend ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    return cudnn


class WindowAttention:
    """o = softmax(q k^T / sqrt(D), keys [i - window + 1, i]) v through one cuDNN graph.

    q, k, v are bf16 [B, H, S, D] views (any strides); window 0 means plain causal.
    """

    def __init__(self, cudnn, q, k, v, window):
        self.cudnn = cudnn
        self.handle = cudnn.create_handle()
        self.q, self.k, self.v = q, k, v
        B, H, S, _ = q.shape
        Dv = v.shape[-1]
        # O in the same [B, S, H, D] memory layout as the inputs.
        self.o = torch.empty(B, S, H, Dv, device=q.device, dtype=q.dtype).transpose(1, 2)
        g = cudnn.pygraph(io_data_type=cudnn.data_type.BFLOAT16,
                          intermediate_data_type=cudnn.data_type.FLOAT,
                          compute_data_type=cudnn.data_type.FLOAT, handle=self.handle)
        tq, tk, tv = g.tensor_like(q), g.tensor_like(k), g.tensor_like(v)
        kw = dict(name="sdpa", q=tq, k=tk, v=tv, attn_scale=1.0 / math.sqrt(q.shape[-1]),
                  use_causal_mask=True)
        if window:
            kw["sliding_window_length"] = window
        try:
            to, _ = g.sdpa(generate_stats=False, **kw)
        except TypeError:  # frontends before generate_stats
            to, _ = g.sdpa(is_inference=True, **kw)
        to.set_output(True).set_dim(list(self.o.shape)).set_stride(list(self.o.stride()))
        g.validate()
        g.build_operation_graph()
        g.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        g.check_support()
        g.build_plans()
        self.graph = g
        self.pack = {tq: q, tk: k, tv: v, to: self.o}
        self.workspace = torch.empty(g.get_workspace_size(), device=q.device, dtype=torch.uint8)
        self.window = window

    def __call__(self):
        self.cudnn.set_stream(handle=self.handle, stream=torch.cuda.current_stream().cuda_stream)
        self.graph.execute(self.pack, self.workspace, handle=self.handle)
        return self.o

    def max_error(self, rows=256):
        """Largest |o - fp32 reference| over the first and last `rows` query rows of batch 0,
        every head."""
        self()
        torch.cuda.synchronize()
        S = self.q.shape[2]
        group = self.q.shape[1] // self.k.shape[1]  # GQA: query heads per K, V head
        k = self.k[0].float().repeat_interleave(group, dim=0)
        v = self.v[0].float().repeat_interleave(group, dim=0)
        worst = 0.0
        for lo in (0, max(0, S - rows)):
            idx = torch.arange(lo, min(S, lo + rows), device=self.q.device)
            q = self.q[0, :, idx].float()
            s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            keys = torch.arange(S, device=q.device)
            allowed = keys[None, :] <= idx[:, None]
            if self.window:
                allowed &= idx[:, None] - keys[None, :] < self.window
            s = s.masked_fill(~allowed, float("-inf"))
            ref = torch.softmax(s, dim=-1) @ v
            worst = max(worst, (self.o[0, :, idx].float() - ref).abs().max().item())
        return worst
