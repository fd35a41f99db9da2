"""Evaluation's fp32 linear layers through oneDNN on AMD CPUs.

PyTorch multiplies fp32 matrices on a CPU with MKL, whose kernels on AMD processors are not its fastest: a MiniLM-sized
linear layer on a Zen 5 EPYC ran at about 2.3x MKL's rate through oneDNN (which PyTorch also ships) with AVX-512, and
at about 1.2x with oneDNN limited to AVX2, the only vector unit of older EPYCs. PyTorch has no switch for it in
fp32, and oneDNN's fp32 linear has no backward; so inference only: inside `onednn_linears`, every fp32
`F.linear` on a CPU with gradients off (`predict_logits` runs under `inference_mode`) goes to oneDNN's linear.
The products are the same up to fp32 rounding (another summation order).

Intel CPUs keep MKL (not measured here); bf16 autocast already runs its products through oneDNN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch
from torch.overrides import TorchFunctionMode


@cache
def amd_cpu() -> bool:
    """Whether this is an AMD processor (Linux: /proc/cpuinfo's vendor)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in cpuinfo)
    except OSError:
        return False


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class OneDnnLinears(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear and not torch.is_grad_enabled():
            named = dict(zip(("input", "weight", "bias"), args, strict=False)) | kwargs
            x, weight, bias = named.get("input"), named.get("weight"), named.get("bias")
            if (
                isinstance(x, torch.Tensor)
                and isinstance(weight, torch.Tensor)
                and weight.dim() == 2
                and x.device.type == "cpu"
                and x.dtype == weight.dtype == torch.float32
                and (bias is None or bias.dtype == torch.float32)
                and x.dim() >= 2
                and not torch.is_autocast_enabled("cpu")
            ):
                # oneDNN reads the bias as a contiguous vector (a strided or expanded one would be misread)
                bias = None if bias is None else bias.contiguous()
                return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
        return func(*args, **kwargs)


@contextmanager
def onednn_linears(device: torch.device | str) -> Iterator[bool]:
    """Within the block, fp32 inference linears on an AMD CPU run through oneDNN (yields whether they do)."""
    if torch.device(device).type != "cpu" or not amd_cpu() or not onednn_available():
        yield False
        return
    with OneDnnLinears():
        yield True
