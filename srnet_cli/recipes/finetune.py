"""`srnet finetune` and `srnet retrain`: fine-tuning with CE or a debiasing loss, best checkpoint by the ID dev
metric. `retrain` is the same recipe with a fixed mask: pruned weights stay exactly zero through training and in
the saved model (paradigm (b) of the paper: a subnetwork fine-tuned in isolation)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from srnet_cli.config.schema import FinetunePreset, RetrainPreset
from srnet_cli.dicts import flat_metrics
from srnet_cli.engine.evaluation.metrics import Metrics, Predictions
from srnet_cli.engine.evaluation.predict import evaluate_sets, write_predictions
from srnet_cli.engine.runs.context import Reporter, RunContext
from srnet_cli.engine.runs.distributed import barrier, check_same_masks
from srnet_cli.engine.runs.files import save_model_atomic
from srnet_cli.engine.sparse.compact import carry_layout, cut_masked
from srnet_cli.engine.sparse.mask_io import MaskFile, MaskMeta, save_mask_file
from srnet_cli.engine.sparse.masks import Masks, sparsity_summary
from srnet_cli.engine.training.models import load_for_prediction
from srnet_cli.recipes import rundirs
from srnet_cli.recipes.budget import budget, prepare_optimizer
from srnet_cli.recipes.inputs import encode_data, evaluation_sets, load_inputs, load_model
from srnet_cli.recipes.naming import search_name
from srnet_cli.recipes.outputs import run_results
from srnet_cli.recipes.results import RunResults, Sparsity
from srnet_cli.recipes.run_io import RunIO, finish, open_run, train
from srnet_cli.recipes.subnetworks import inject_mask_file, load_mask_input


@dataclass
class Best:
    value: float = -math.inf
    step: int = 0
    known: tuple[Metrics, Predictions] | None = None  # the best checkpoint's numbers: not recomputed at the end


@dataclass
class FixedMask:
    """retrain: the mask the subnetwork keeps, where it came from and how it was found."""

    masks: Masks
    path: Path
    meta: MaskMeta
    compact: bool = False  # its heads and neurons cut out: the model trains and is saved compact


def cut_to_compact(model: torch.nn.Module, fixed: FixedMask, source: str, reporter: Reporter) -> None:
    """retrain --compact: the masked heads and neurons cut out of the model, which then carries its layout so that
    every save of it is a loadable compact model. The same function as the masked model (checked on a probe) with
    fewer FLOPs; the gradients of the kept weights are the masked model's, only dropout draws differ."""
    before = sum(p.numel() for p in model.parameters())
    layout, _ = cut_masked(model)
    carry_layout(model, layout, {"mask": str(fixed.path), "model": source, **sparsity_summary(fixed.masks)})
    after = sum(p.numel() for p in model.parameters())
    reporter.log(f"compact: heads {list(layout.heads)}, FFN neurons {list(layout.neurons)}; {after:,} of {before:,} "
                 "parameters train")  # fmt: skip
    fixed.compact = True


def run(preset: FinetunePreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> RunResults:
    """Inputs checked -> run directory -> the loop, saving the best checkpoint -> that checkpoint on every set."""
    done = rundirs.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
    mask_cfg = preset.mask if isinstance(preset, RetrainPreset) else None
    mask_path, mask_file = load_mask_input(mask_cfg.file, mask_cfg.sparsity) if mask_cfg else (None, None)
    inputs = load_inputs(preset, ctx, overwrite, extra=(mask_path,), resume=resume)
    loaded = load_model(preset, inputs, ctx)
    train_enc, eval_sets = encode_data(preset, inputs, loaded)
    plan = budget(preset, len(train_enc))  # a warm-up longer than the run is refused before writing
    fixed = None
    if mask_cfg is not None and mask_file is not None and mask_path is not None:
        fixed = FixedMask(inject_mask_file(loaded.model, mask_file, mask_cfg, ctx.reporter), mask_path, mask_file.meta)
        if mask_cfg.compact:
            cut_to_compact(loaded.model, fixed, preset.model.name_or_path, ctx.reporter)
    io = open_run(preset, ctx, overwrite, resume, inputs, loaded, train_enc, eval_sets, plan)
    if fixed is not None:
        record_mask(io, fixed)
    model, optimizer, scheduler = prepare_optimizer(preset, loaded.model, loaded.accelerator, plan)
    ctx.reporter.log(
        f"training {plan.max_steps} steps ({plan.max_steps / plan.steps_per_epoch:.2f} epochs of "
        f"{len(train_enc)} examples), loss {preset.loss.kind}, warmup {plan.warmup}, device {loaded.accelerator.device}"
    )
    state = FinetuneRun(io, model, optimizer, scheduler, fixed)
    if resume:
        state.restore()
    train(io, model, optimizer, scheduler, first_step=state.first_step, max_steps=plan.max_steps,
          eval_every=preset.eval.every, evaluate=state.evaluate, on_step=state.on_step,
          checkpoint=state.checkpoint)  # fmt: skip
    results = final_evaluation(state)
    results.seconds = round(time.time() - started, 1)
    return finish(io, results, plan.max_steps)


def record_mask(io: RunIO[FinetunePreset], fixed: FixedMask) -> None:
    """The mask in the run directory, after checking every process holds the same one."""
    io.ctx.reporter.log(f"mask hash {check_same_masks(fixed.masks)} (equal on every process)")
    if io.main:
        save_mask_file(io.out / "masks" / "mask.safetensors", MaskFile(fixed.masks, {}, {"source": str(fixed.path)}))


@dataclass
class FinetuneRun:
    """What one fine-tuning (or retraining) run holds between its steps."""

    io: RunIO[FinetunePreset]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    fixed: FixedMask | None = None
    first_step: int = 0
    best: Best = field(default_factory=Best)

    def evaluate(self, step: int) -> None:
        """The selection set (and OOD sets with eval.ood_during_training); an improvement saves the model."""
        io = self.io
        selection, during = evaluation_sets(io.preset, io.eval_sets)
        task, device = io.inputs.task, io.accelerator.device
        metrics, predictions = evaluate_sets(
            self.model, during, task.labels, io.preset.eval.batch_size, device, task.name, progress=io.ctx.reporter
        )
        value = metrics[selection.name][io.preset.eval.metric]
        assert isinstance(value, float)
        io.metrics_log.write({"step": step, "epoch": round(step / io.plan.steps_per_epoch, 3), **flat_metrics(metrics)})
        improved = value > self.best.value
        if improved:
            self.best = Best(value, step, (metrics, predictions))
            if io.main:
                save_model_atomic(io.bare(self.model), io.loaded.tokenizer, io.out / "model")
        io.ctx.reporter.log(
            f"step {step}: {selection.name} {io.preset.eval.metric} {value:.4f}"
            + (" (best, saved)" if improved else "")
        )

    def on_step(self, step: int) -> None:
        """A snapshot of the model every train.save_every steps (the timing study)."""
        io, every = self.io, self.io.preset.train.save_every
        if io.main and every and step % every == 0:
            save_model_atomic(io.bare(self.model), io.loaded.tokenizer, io.out / "checkpoints" / f"step-{step}")

    def checkpoint(self, step: int) -> None:
        best = {"value": self.best.value, "step": self.best.step}
        self.io.checkpoints.save(step, self.model, self.optimizer, self.scheduler, {"best": best})

    def restore(self) -> None:
        saved = self.io.checkpoints.load()
        if saved is not None:
            self.io.checkpoints.restore(saved, self.model, self.optimizer, self.scheduler)
            self.first_step = saved.meta["step"]
            self.best = Best(saved.meta["best"]["value"], saved.meta["best"]["step"])


def final_evaluation(state: FinetuneRun) -> RunResults:
    """The selected checkpoint on every ID split and OOD set; its selection-set numbers are reused unless it is
    reloaded in fp32 after autocast training."""
    io, best = state.io, state.best
    preset, plan, accelerator = io.preset, io.plan, io.accelerator
    barrier(accelerator)  # the main process has written the best model
    reusable = best.known if preset.train.mixed_precision == "no" or best.step == plan.max_steps else None
    model = state.model
    if best.step != plan.max_steps:
        model = load_for_prediction(str(io.out / "model"), accelerator.device, "no")  # fp32, as the docstring says
    task = io.inputs.task
    metrics, predictions = evaluate_sets(model, io.eval_sets, task.labels, preset.eval.batch_size, accelerator.device,
                                         task.name, known=reusable, progress=io.ctx.reporter)  # fmt: skip
    if io.main:
        write_predictions(io.out, io.eval_sets, predictions)
    selection, _ = evaluation_sets(preset, io.eval_sets)
    results = run_results(preset, io.inputs, io.out, plan, best.step, selection, metrics)
    if state.fixed is not None:
        results.mask = str(state.fixed.path)
        results.mask_method = mask_method(state.fixed.meta)
        if state.fixed.compact:  # the removed heads and neurons are gone from the saved matrices, not zero
            results.sparsity = Sparsity(**sparsity_summary(state.fixed.masks))
        else:  # measured on the saved weights, not the mask: proves the pruned weights stayed zero
            params = dict(model.named_parameters())
            saved = {k: params[k].detach().cpu() != 0 for k in state.fixed.masks}
            results.sparsity = Sparsity(**sparsity_summary(saved))
    return results


def mask_method(meta: MaskMeta) -> str | None:
    """How a mask was found, from its metadata, named as `srnet report` names that search ("lottery-ticket IMP poe",
    "mask-train ce + OOD data", ...); None for a mask without srnet provenance (the original project's)."""
    if meta.get("command") not in ("imp", "mask-train"):
        return None
    return search_name(
        str(meta["command"]),
        str(meta.get("loss")),
        rewind=str(meta.get("rewind", "none")),
        ood_data=bool(meta.get("ood_train")),
        pretrained=bool(meta.get("pretrained")),
        initial=_fraction(meta.get("initial_sparsity")),
        target=_fraction(meta.get("target_sparsity")),
        model=str(meta.get("model", "")),
    )


def _fraction(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
