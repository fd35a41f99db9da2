"""The parts every training recipe composes once its inputs are checked: the run-IO record (inputs, model, run
directory, metrics log, checkpointer, loss, data order), the one call of the training loop, and the finish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import torch
from accelerate import Accelerator

from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.data.batching import BatchStream, Encoded
from srnet_cli.engine.debias.losses import TrainingLoss, make_loss
from srnet_cli.engine.evaluation.predict import EvalSet
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import is_main
from srnet_cli.engine.training.loop import train_loop
from srnet_cli.recipes import rundirs
from srnet_cli.recipes.budget import Budget
from srnet_cli.recipes.checkpointing import Checkpointer, checkpoint_every
from srnet_cli.recipes.inputs import Inputs, Loaded
from srnet_cli.recipes.outputs import MetricsLog, open_metrics_log
from srnet_cli.recipes.results import RunResults

StepHook = Callable[[int], None]
P = TypeVar("P", bound=FinetunePreset)  # every training command's preset extends finetune's


@dataclass
class RunIO(Generic[P]):
    """A run's checked inputs, loaded model, budget, run directory, metrics log, loss, data order and checkpointer."""

    preset: P
    ctx: RunContext
    inputs: Inputs
    loaded: Loaded
    train_enc: Encoded
    eval_sets: list[EvalSet]
    plan: Budget
    out: Path
    metrics_log: MetricsLog
    loss_fn: TrainingLoss
    stream: BatchStream
    checkpoints: Checkpointer

    @property
    def main(self) -> bool:
        return is_main(self.loaded.accelerator)

    @property
    def accelerator(self) -> Accelerator:
        return self.loaded.accelerator

    def bare(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model without the device/process wrapper: what is saved, masked and measured."""
        return self.accelerator.unwrap_model(model)


def open_run(preset: P, ctx: RunContext, overwrite: bool, resume: bool, inputs: Inputs, loaded: Loaded,
             train_enc: Encoded, eval_sets: list[EvalSet], plan: Budget) -> RunIO[P]:  # fmt: skip
    """After every check passed: the run directory (or its repair on --resume), the metrics log and tracker, the
    loss and the data order."""
    out = rundirs.start_run(preset, ctx, overwrite, inputs.paths, loaded.accelerator, resume)
    metrics_log = open_metrics_log(preset, ctx, out, loaded.accelerator)
    loss = preset.loss
    loss_fn = make_loss(loss.kind, loss.anneal, plan.max_steps, entropy_weight=loss.entropy_weight, gamma=loss.gamma,
                        model=loaded.accelerator.unwrap_model(loaded.model))  # fmt: skip
    stream = BatchStream(train_enc.lengths, preset.train.batch_size, preset.train.seed)
    checkpoints = Checkpointer(out, preset.command, loaded.accelerator, stream)
    return RunIO(preset, ctx, inputs, loaded, train_enc, eval_sets, plan, out, metrics_log, loss_fn, stream,
                 checkpoints)  # fmt: skip


def train(io: RunIO[P], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
          scheduler: torch.optim.lr_scheduler.LRScheduler, *, first_step: int, max_steps: int, eval_every: int,
          evaluate: StepHook, on_step: StepHook, checkpoint: StepHook) -> None:  # fmt: skip
    """The one training loop from `first_step` to `max_steps`, with this run's data, loss and reporting."""
    train_loop(model, io.train_enc, io.loss_fn, optimizer, scheduler, accelerator=io.accelerator, stream=io.stream,
               first_step=first_step, max_steps=max_steps, eval_every=eval_every, evaluate_fn=evaluate,
               reporter=io.ctx.reporter, max_grad_norm=io.preset.train.max_grad_norm, on_step=on_step,
               checkpoint_every=checkpoint_every(io.preset, eval_every), checkpoint_fn=checkpoint,
               tracker=io.metrics_log.tracker)  # fmt: skip


def finish(io: RunIO[P], results: RunResults, last_step: int) -> RunResults:
    """Final numbers to the tracker, results.json, and the resumable state dropped."""
    io.metrics_log.finish(results, last_step)
    if io.main:
        rundirs.finish_run(io.out, results)
    return results
