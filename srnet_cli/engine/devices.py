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


def make_accelerator(device: str) -> Any:
    """`auto` takes a GPU when there is one."""
    from accelerate import Accelerator

    check_device(device)
    return Accelerator(cpu=device == "cpu")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
