"""What the benchmark measures besides wall time: step clocks, the matmul peak, training FLOPs, peak memory."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


from srnet_cli.engine.sparse.structure import config_of

# Timings compared in a ratio run this many times in turn (a, b, a, b) and each keeps its fastest: a CPU's speed
# wanders over minutes (clock, a neighbour's load), and a single run of each in sequence puts the drift in the ratio.
ROUNDS = 2


def fastest(*runs: Callable[[], dict], rounds: int = ROUNDS) -> list[dict]:
    """Each timing run `rounds` times, interleaved; per run, the result of its fastest round (the lowest
    `seconds_per_step`, or the highest `examples_per_second`)."""
    results: list[list[dict]] = [[] for _ in runs]
    for _ in range(rounds):
        for kept, run in zip(results, runs, strict=True):
            kept.append(run())

    def speed(result: dict) -> float:
        return result["examples_per_second"] if "examples_per_second" in result else -result["seconds_per_step"]

    return [max(kept, key=speed) for kept in results]


class StepClock:
    """Time from the start of the first step to the end of the last, over the steps taken."""

    def __init__(self) -> None:
        self.begin: float | None = None
        self.times: list[float] = []

    def start(self, *_: object) -> None:
        if self.begin is None:
            self.begin = time.perf_counter()

    def tick(self, *_: object) -> None:
        self.times.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        assert self.begin is not None and self.times, "no step was timed"
        return (self.times[-1] - self.begin) / len(self.times)


def matmul_peak_flops(
    dtype: str = "fp32", sizes: tuple[int, ...] = (1024, 2048), repeats: int = 6, onednn: bool = False
) -> float:
    """Best square-matmul FLOP/s of this machine in fp32 or bf16 with torch's current thread count, through
    `torch.mm` (MKL for fp32) or, with `onednn`, oneDNN's linear on a packed weight (which evaluation uses in fp32
    where it is the faster one). On CPUs with AMX, bf16 is the real limit (several times fp32), so training FLOP/s are
    compared with the highest of them."""
    import torch

    from srnet_cli.engine.evaluation.cpu_products import onednn_linear, packed_weight

    def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return onednn_linear(a, b) if onednn else torch.mm(a, b)

    best_rate = 0.0
    for size in sizes:
        a = torch.randn(size, size, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
        b = torch.randn_like(a)
        if onednn:
            with torch.inference_mode():
                b = packed_weight(b)  # as evaluation runs it: packed once, outside the timing
        product(a, b)  # the first call sets up kernels
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            product(a, b)
            best = min(best, time.perf_counter() - start)
        best_rate = max(best_rate, 2 * size**3 / best)
    return best_rate


def training_flops(model: nn.Module, real_tokens: int, squared_lengths: int) -> float:
    """6 FLOPs per weight per real token for the linear layers (forward + backward), plus attention scores and
    values: 2·2·L·d·len² per example forward, times 3 (so Σ len² over examples, not (mean len)²)."""
    import torch

    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    config = config_of(model)
    return 6 * linear * real_tokens + 12 * config.num_hidden_layers * config.hidden_size * squared_lengths
