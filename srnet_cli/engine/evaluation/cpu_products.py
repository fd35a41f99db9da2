"""Evaluation's fp32 linear layers through oneDNN, on CPUs where it measures faster than MKL.

PyTorch multiplies fp32 matrices on a CPU with MKL, whose kernels on AMD processors are not its fastest: on the
EPYCs measured (docs/measurements.md), oneDNN, which PyTorch also ships, ran MiniLM-sized linear layers faster, by
far with AVX-512 and by less with AVX2 alone. PyTorch has no switch for it in fp32, and oneDNN's fp32 linear has
no backward; so inference only: inside `onednn_linears`, every fp32 `F.linear` on a CPU with gradients off
(`predict_logits` runs under `inference_mode`) goes to oneDNN's linear. The products are the same up to fp32
rounding (another summation order).

A weight is reordered once per block into oneDNN's blocked layout (`packed_weight`) and reused by every batch:
oneDNN otherwise re-blocks the weight at each call. Only Parameters are packed (they do not change within an
evaluation), and weights computed once for the block (a mask being learnt: `masks.masked_weights_once`); a weight
computed in each forward pass is a new tensor at each call and goes to oneDNN as it is.

Which library is faster depends on the CPU, so it is measured, once per process and thread count: a MiniLM FFN
product at an evaluation batch through each, in turn (a fraction of a second). oneDNN is taken only when it is
clearly faster, so a machine where the two are level keeps MKL run after run. bf16 autocast already runs its
products through oneDNN.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode

PROBE = (2048, 384, 1536)  # rows x inputs -> outputs: a MiniLM FFN product at an evaluation batch
# the row count oneDNN picks a weight layout for (fewer rows, as in the cut last layer, read that layout as fast)
PACK_ROWS = PROBE[0]
MARGIN = 1.1  # oneDNN must be this much faster to be taken
_faster_at_threads: dict[int, bool] = {}


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear` through oneDNN (no autograd: inference only). oneDNN reads the bias as a contiguous vector, so a
    strided or expanded one is made contiguous first."""
    bias = None if bias is None else bias.contiguous()
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def packed_weight(weight: torch.Tensor) -> torch.Tensor:
    """`weight` (outputs x inputs, fp32) reordered for `onednn_linear`: an opaque tensor only it reads."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACK_ROWS)


def onednn_wins(mkl_seconds: float, onednn_seconds: float) -> bool:
    return onednn_seconds * MARGIN < mkl_seconds


def onednn_faster() -> bool:
    """Whether oneDNN's fp32 linear beats torch's own (MKL) on this CPU at the current thread count (timed once)."""
    threads = torch.get_num_threads()
    if threads not in _faster_at_threads:
        _faster_at_threads[threads] = onednn_available() and onednn_wins(*_time_both())
    return _faster_at_threads[threads]


def _time_both(rounds: int = 3) -> tuple[float, float]:
    """Best seconds of MKL's and oneDNN's product of the probe's shape, timed in turn."""
    rows, inputs, outputs = PROBE
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, inputs, generator=generator)
    weight = torch.randn(outputs, inputs, generator=generator)
    best = [float("inf"), float("inf")]
    with torch.inference_mode():
        packed = packed_weight(weight)  # as evaluation runs it
        products = (
            lambda: torch.nn.functional.linear(x, weight),
            lambda: onednn_linear(x, packed),
        )
        for product in products:
            product()  # the first call sets up kernels
        for _ in range(rounds):
            for i, product in enumerate(products):
                start = time.perf_counter()
                product()
                best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1]


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class OneDnnLinears(TorchFunctionMode):
    """fp32 inference linears through oneDNN; each Parameter weight is packed on first use and kept for the block."""

    def __init__(self) -> None:
        super().__init__()
        self.packed: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(weight) -> (weight, its packed copy)
        self.fixed: dict[int, torch.Tensor] = {}  # weights other than Parameters that do not change in the block

    def weight_for(self, weight: torch.Tensor) -> torch.Tensor:
        if not isinstance(weight, torch.nn.Parameter) and self.fixed.get(id(weight)) is not weight:
            return weight  # computed in the forward pass: changes at every call
        held = self.packed.get(id(weight))
        if held is None or held[0] is not weight:
            held = (weight, packed_weight(weight))
            self.packed[id(weight)] = held
        return held[1]

    def hold(self, weight: torch.Tensor) -> torch.Tensor:
        """Mark `weight`, computed once for the block (`masks.masked_weights_once`), as fixed within it: it is packed
        on first use, as a Parameter is. Returns it unchanged (where autocast takes the product, it stays unpacked)."""
        self.fixed[id(weight)] = weight
        return weight

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
                return onednn_linear(x, self.weight_for(weight), bias)
        return func(*args, **kwargs)


@contextmanager
def onednn_linears(device: torch.device | str) -> Iterator[OneDnnLinears | None]:
    """Within the block, fp32 inference linears on a CPU run through oneDNN where it measured faster (yields the
    mode, or None where they do not)."""
    if torch.device(device).type != "cpu" or not onednn_faster():
        yield None
        return
    with OneDnnLinears() as mode:
        yield mode
