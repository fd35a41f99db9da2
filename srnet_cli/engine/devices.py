"""Device choice through accelerate, and reproducible seeding."""

from __future__ import annotations

import random
from typing import Any

from srnet_cli.errors import UsageError


def check_device(device: str) -> None:
    """`cuda` without a visible GPU is an error (before anything is written), not a silent CPU run."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but no CUDA device is visible", "use --device cpu or --device auto")


def make_accelerator(device: str, mixed_precision: str = "no") -> Any:
    """`auto` takes a GPU when there is one. fp16 needs a GPU; bf16 also runs on CPUs (autocast)."""
    import torch
    from accelerate import Accelerator

    check_device(device)
    if mixed_precision == "fp16" and (device == "cpu" or not torch.cuda.is_available()):
        raise UsageError("--mixed-precision fp16 needs a CUDA device", "use bf16, or no mixed precision on a CPU")
    from accelerate.state import AcceleratorState

    # The state is a process-wide singleton; one process that runs several recipes (demo, tests) may need another
    # precision. The per-process part (ranks, device) is kept.
    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
