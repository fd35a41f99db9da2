"""How long a run trains (epochs or max_steps, warm-up), and its optimiser and schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from srnet_cli.config.schema import FinetunePreset, TrainCfg
from srnet_cli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn


@dataclass(frozen=True)
class Budget:
    steps_per_epoch: int
    max_steps: int
    warmup: int


def steps_of(cfg: TrainCfg, n_train: int) -> Budget:
    """Steps from max_steps or epochs over `n_train` examples, and the warm-up in steps (also for --dry-run: this
    module imports no torch)."""
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    max_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else round((cfg.warmup_ratio or 0.0) * max_steps)
    return Budget(steps_per_epoch, max_steps, warmup)


def budget(preset: FinetunePreset, n_train: int) -> Budget:
    """Steps from max_steps or epochs; a warm-up not shorter than the run is refused (before anything is written)."""
    plan = steps_of(preset.train, n_train)
    warmup, max_steps = plan.warmup, plan.max_steps
    if warmup and warmup >= max_steps:  # the learning rate would never reach its peak (a 40-step run at lr ~1e-7)
        raise UsageError(
            f"the warm-up ({warmup} steps) is not shorter than the run ({max_steps} steps)",
            f"pass --warmup 0.1 (10% of the run), --warmup N below {max_steps}, or --warmup 0",
        )
    return plan


def prepare_optimizer(
    preset: FinetunePreset, model: nn.Module, accelerator: Accelerator, plan: Budget
) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over the trainable parameters and the linear warm-up/decay schedule, prepared for the device."""
    from srnet_cli.engine.training.loop import adamw, linear_warmup_decay  # torch: not for --dry-run's steps_of

    optimizer = adamw(model, preset.train.lr, preset.train.weight_decay)
    scheduler = linear_warmup_decay(optimizer, plan.warmup, plan.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    return model, optimizer, scheduler
