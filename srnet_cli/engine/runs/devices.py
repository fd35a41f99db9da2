"""Device choice through accelerate, and reproducible seeding."""

from __future__ import annotations

import ctypes
import os
import random
import sys
from typing import TYPE_CHECKING

from srnet_cli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator

    from srnet_cli.engine.training.cpu_paths import Model


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Keep freed memory in this process's heap instead of returning it to the kernel (glibc only; True if set).

    glibc serves every block over 32 MiB with a fresh mmap and unmaps it when freed, so a training step that
    allocates such a block (the word-embedding gradient of a BERT vocabulary, large activations) page-faults
    through all of it again on every step. Kept in the heap, the next step reuses the pages. The cost: the process
    keeps its peak footprint until it exits, which a training command reaches anyway."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # this process's symbols, libc's among them (find_library would run ldconfig)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's malloc takes no such settings
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, INT_MAX))


def check_device(device: str) -> None:
    """`cuda` without a visible GPU is an error (before anything is written), not a silent CPU run; so is a
    `cuda:N` beyond the visible GPUs."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device} but no CUDA device is visible", "use --device cpu or --device auto")
    if device.startswith("cuda:"):
        index, count = int(device.removeprefix("cuda:")), torch.cuda.device_count()
        if index >= count:
            raise UsageError(
                f"--device {device} but only {count} CUDA device(s) are visible",
                f"use --device cuda:0 ... cuda:{count - 1}",
            )
        torch.cuda.set_device(index)  # accelerate's single-process device is the current CUDA device


PRECISIONS = ("no", "bf16", "fp16")


def runs_on_cpu(device: str) -> bool:
    """`cpu`, or `auto` with no visible GPU (`check_device` has already refused `cuda` without one)."""
    import torch

    return device == "cpu" or not torch.cuda.is_available()


def check_precision(device: str, mixed_precision: str) -> None:
    """A precision the device can run: fp16 needs a GPU; bf16 also runs on CPUs (autocast)."""
    if mixed_precision not in PRECISIONS:
        raise UsageError(f"--mixed-precision {mixed_precision!r} is not a precision", "use no, bf16 or fp16")
    if mixed_precision == "fp16" and runs_on_cpu(device):
        raise UsageError("--mixed-precision fp16 needs a CUDA device", "use bf16, or no mixed precision on a CPU")


ONEDNN_ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # the second is the former name, still read
# oneDNN's instruction-set caps that leave it native bf16 products
BF16_ISA_CAPS = frozenset(
    {"ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16"}
    | {"AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2"}
)


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16, and oneDNN not capped below them by ONEDNN_MAX_CPU_ISA: it runs bf16 matmuls natively,
    several times faster than fp32. Without them bf16 is emulated, orders of magnitude slower than fp32. (A cap such
    as `ONEDNN_MAX_CPU_ISA=AVX2` makes a newer CPU run as an AVX2-only one would.)"""
    import torch

    cap = next((os.environ[name] for name in ONEDNN_ISA_CAP_VARIABLES if os.environ.get(name)), "").strip().upper()
    if cap and cap not in BF16_ISA_CAPS:
        return False
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private, so looked up defensively
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def slow_precision_note(device: torch.device | str, mixed_precision: str) -> str | None:
    """A one-line warning when bf16 is asked for on a CPU that can only emulate it (the run works, very slowly)."""
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if mixed_precision == "bf16" and on_cpu and not cpu_has_fast_bf16():
        return (
            "warning: this CPU has no native bf16 (no AMX or AVX512-BF16): bf16 runs ~100x slower than fp32 here; "
            "use --mixed-precision no"
        )
    return None


def make_accelerator(device: str, mixed_precision: str = "no") -> Accelerator:
    """`auto` takes a GPU when there is one."""
    from accelerate import Accelerator

    check_device(device)
    check_precision(device, mixed_precision)
    from accelerate.state import AcceleratorState

    # The state is a process-wide singleton; one process that runs several recipes (demo, tests) may need another
    # precision. The per-process part (ranks, device) is kept.
    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision)


def fit_to_device(model: Model, device: torch.device | str, mixed_precision: str) -> Model:
    """On a CPU, srnet's dropout masks and attention (`cpu_paths`: faster, same model). A family without pluggable
    attention runs bf16 with eager attention: PyTorch's CPU flash-attention backward is much slower in bf16 than in
    fp32 (it made a bf16 training step slower than an fp32 one), while eager attention's matmuls run on the CPU's
    native bf16 units."""
    from srnet_cli.engine.training.cpu_paths import use_cpu_paths

    if getattr(device, "type", str(device)) != "cpu":
        return model
    use_cpu_paths(model)
    if mixed_precision == "bf16" and getattr(model.config, "_attn_implementation", "eager") == "sdpa":
        model.set_attn_implementation("eager")  # type: ignore[operator]  # a PreTrainedModel's
    return model


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
