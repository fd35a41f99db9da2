"""What every training recipe holds once its run directory exists, and the one call of the training loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.data.batching import BatchStream, Encoded
from srnet_cli.engine.debias.losses import make_loss
from srnet_cli.engine.evaluation.predict import EvalSet
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import is_main
from srnet_cli.engine.training.loop import train_loop
from srnet_cli.recipes import rundirs
from srnet_cli.recipes.budget import Budget
from srnet_cli.recipes.checkpointing import Checkpointer, checkpoint_every
from srnet_cli.recipes.inputs import Inputs, Loaded
from srnet_cli.recipes.outputs import MetricsLog, open_metrics_log


@dataclass
class TrainingRun:
    """A run's checked inputs, loaded model, budget, run directory, metrics log, loss and data order."""

    preset: FinetunePreset
    ctx: RunContext
    inputs: Inputs
    loaded: Loaded
    train_enc: Encoded
    eval_sets: list[EvalSet]
    plan: Budget
    out: Path
    metrics_log: MetricsLog
    loss_fn: Any
    stream: BatchStream
    checkpoints: Checkpointer

    @property
    def main(self) -> bool:
        return is_main(self.loaded.accelerator)

    @property
    def accelerator(self) -> Any:
        return self.loaded.accelerator

    def shared(self) -> dict[str, Any]:
        """These fields, to build a recipe's own run state from them."""
        return {name: getattr(self, name) for name in TrainingRun.__dataclass_fields__}

    def loop(self, model: Any, optimizer: Any, scheduler: Any, *, first_step: int, max_steps: int, eval_every: int,
             evaluate_fn: Any, on_step: Any, checkpoint_fn: Any) -> None:  # fmt: skip
        """The one training loop, from `first_step` to `max_steps`, with this run's data, loss and reporting."""
        train_loop(model, self.train_enc, self.loss_fn, optimizer, scheduler, accelerator=self.accelerator,
                   stream=self.stream, first_step=first_step, max_steps=max_steps, eval_every=eval_every,
                   evaluate_fn=evaluate_fn, reporter=self.ctx.reporter, max_grad_norm=self.preset.train.max_grad_norm,
                   on_step=on_step, checkpoint_every=checkpoint_every(self.preset, eval_every),
                   checkpoint_fn=checkpoint_fn, tracker=self.metrics_log.tracker)  # fmt: skip


def open_run(preset: FinetunePreset, ctx: RunContext, overwrite: bool, resume: bool, inputs: Inputs, loaded: Loaded,
             train_enc: Encoded, eval_sets: list[EvalSet], plan: Budget) -> TrainingRun:  # fmt: skip
    """After every check passed: the run directory (or its repair on --resume), the metrics log and tracker, the
    loss and the data order."""
    out = rundirs.start_run(preset, ctx, overwrite, inputs.paths, loaded.accelerator, resume)
    metrics_log = open_metrics_log(preset, ctx, out, loaded.accelerator)
    loss = preset.loss
    loss_fn = make_loss(loss.kind, loss.anneal, plan.max_steps, entropy_weight=loss.entropy_weight, gamma=loss.gamma,
                        model=loaded.accelerator.unwrap_model(loaded.model))  # fmt: skip
    stream = BatchStream(train_enc.lengths, preset.train.batch_size, preset.train.seed)
    checkpoints = Checkpointer(out, preset.command, loaded.accelerator, stream)
    return TrainingRun(preset, ctx, inputs, loaded, train_enc, eval_sets, plan, out, metrics_log, loss_fn, stream,
                       checkpoints)  # fmt: skip


def train(state: Any) -> None:
    """One loop over the whole run for a recipe whose state holds `model`, `optimizer`, `scheduler`, `first_step`
    and the callbacks `evaluate`, `on_step` and `checkpoint` (finetune/retrain, mask-train; imp loops per level)."""
    state.loop(state.model, state.optimizer, state.scheduler, first_step=state.first_step,
               max_steps=state.plan.max_steps, eval_every=state.preset.eval.every, evaluate_fn=state.evaluate,
               on_step=state.on_step, checkpoint_fn=state.checkpoint)  # fmt: skip


def run_training(
    preset: FinetunePreset,
    ctx: RunContext,
    overwrite: bool,
    resume: bool,
    prepare: Callable[..., Any],
    final_evaluation: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """A finished run's results on --resume; otherwise prepare -> train -> final evaluation -> finish."""
    done = rundirs.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
    state = prepare(preset, ctx, overwrite, resume)
    train(state)
    results = final_evaluation(state)
    results["seconds"] = round(time.time() - started, 1)
    return finish(state, results, state.plan.max_steps)


def finish(run: TrainingRun, results: dict[str, Any], last_step: int) -> dict[str, Any]:
    """Final numbers to the tracker, results.json, and the resumable state dropped."""
    run.metrics_log.finish(results, last_step)
    if run.main:
        rundirs.finish_run(run.out, results)
    return results
