"""Device choice through accelerate, and reproducible seeding."""

from __future__ import annotations

import random
from typing import Any

from srnet_cli.errors import UsageError


def make_accelerator(device: str) -> Any:
    """`auto` takes a GPU when there is one; `cuda` without one is an error rather than a silent CPU run."""
    import torch
    from accelerate import Accelerator

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but no CUDA device is visible", "use --device cpu or --device auto")
    return Accelerator(cpu=device == "cpu")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
