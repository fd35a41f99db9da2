"""`srnet finetune` and `srnet retrain`: fine-tuning with CE or a debiasing loss, best checkpoint by the ID dev
metric. `retrain` is the same recipe with a fixed mask: pruned weights stay exactly zero through training and in
the saved model (paradigm (b) of the paper: a subnetwork fine-tuned in isolation).

The recipe reads top to bottom: `prepare` (inputs, model, run directory, optimiser, resumed state), `train` (the
one loop, with `FinetuneRun.evaluate` selecting the best checkpoint), `final_evaluation`, `finish`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srnet_cli.config.schema import FinetunePreset, RetrainPreset
from srnet_cli.dicts import flat_metrics
from srnet_cli.engine.evaluation.predict import evaluate_sets, write_predictions
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import barrier, check_same_masks
from srnet_cli.engine.runs.files import save_model_atomic
from srnet_cli.engine.sparse.mask_io import MaskFile, save_mask_file
from srnet_cli.engine.sparse.masks import sparsity_summary
from srnet_cli.engine.training.models import load_classifier
from srnet_cli.recipes.budget import budget, prepare_optimizer
from srnet_cli.recipes.inputs import encode_data, evaluation_sets, load_inputs, load_model
from srnet_cli.recipes.masks import inject_mask_file, load_mask_input
from srnet_cli.recipes.outputs import run_results
from srnet_cli.recipes.report import search_name
from srnet_cli.recipes.run_state import TrainingRun, open_run, run_training


@dataclass
class Best:
    value: float = -math.inf
    step: int = 0
    known: Any = None  # the best checkpoint's (metrics, predictions): not recomputed at the end


@dataclass
class FinetuneRun(TrainingRun):
    """What one fine-tuning (or retraining) run holds between its steps."""

    model: Any
    optimizer: Any
    scheduler: Any
    masks: dict[str, Any] | None = None  # retrain: the fixed mask
    mask_path: Path | None = None
    mask_meta: dict[str, Any] = field(default_factory=dict)
    first_step: int = 0
    best: Best = field(default_factory=Best)

    def evaluate(self, step: int) -> None:
        """The selection set (and OOD sets with eval.ood_during_training); an improvement saves the model."""
        selection, during = evaluation_sets(self.preset, self.eval_sets)
        task, device = self.inputs.task, self.loaded.accelerator.device
        metrics, predictions = evaluate_sets(
            self.model, during, task.labels, self.preset.eval.batch_size, device, task.name, progress=self.ctx.reporter
        )
        value = metrics[selection.name][self.preset.eval.metric]
        self.metrics_log.write(
            {"step": step, "epoch": round(step / self.plan.steps_per_epoch, 3), **flat_metrics(metrics)}
        )
        improved = value > self.best.value
        if improved:
            self.best = Best(value, step, (metrics, predictions))
            if self.main:
                save_model_atomic(self.bare_model(), self.loaded.tokenizer, self.out / "model")
        self.ctx.reporter.log(
            f"step {step}: {selection.name} {self.preset.eval.metric} {value:.4f}"
            + (" (best, saved)" if improved else "")
        )

    def on_step(self, step: int) -> None:
        """A snapshot of the model every train.save_every steps (the timing study)."""
        every = self.preset.train.save_every
        if self.main and every and step % every == 0:
            save_model_atomic(self.bare_model(), self.loaded.tokenizer, self.out / "checkpoints" / f"step-{step}")

    def checkpoint(self, step: int) -> None:
        best = {"value": self.best.value, "step": self.best.step}
        self.checkpoints.save(step, self.model, self.optimizer, self.scheduler, {"best": best})

    def bare_model(self) -> Any:
        return self.loaded.accelerator.unwrap_model(self.model)


def run(preset: FinetunePreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    return run_training(preset, ctx, overwrite, resume, prepare, final_evaluation)


def prepare(preset: FinetunePreset, ctx: RunContext, overwrite: bool, resume: bool) -> FinetuneRun:
    """Inputs and model checked before the run directory is written; then the optimiser and any saved state."""
    mask_cfg = preset.mask if isinstance(preset, RetrainPreset) else None
    mask_path, mask_file = load_mask_input(mask_cfg.file, mask_cfg.sparsity) if mask_cfg else (None, None)
    inputs = load_inputs(preset, ctx, overwrite, extra=(mask_path,), resume=resume)
    loaded = load_model(preset, inputs, ctx)
    train_enc, eval_sets = encode_data(preset, inputs, loaded)
    plan = budget(preset, len(train_enc))  # a warm-up longer than the run is refused before writing
    masks = None
    if mask_file is not None and mask_cfg is not None:
        masks = inject_mask_file(loaded.model, mask_file, mask_cfg, ctx.reporter)
    base = open_run(preset, ctx, overwrite, resume, inputs, loaded, train_enc, eval_sets, plan)
    if masks is not None:
        ctx.reporter.log(f"mask hash {check_same_masks(masks)} (equal on every process)")
        if base.main:
            save_mask_file(base.out / "masks" / "mask.safetensors", MaskFile(masks, {}, {"source": str(mask_path)}))
    model, optimizer, scheduler = prepare_optimizer(preset, loaded.model, loaded.accelerator, plan)
    ctx.reporter.log(
        f"training {plan.max_steps} steps ({plan.max_steps / plan.steps_per_epoch:.2f} epochs of "
        f"{len(train_enc)} examples), loss {preset.loss.kind}, warmup {plan.warmup}, device {loaded.accelerator.device}"
    )
    meta = mask_file.meta if mask_file else {}
    state = FinetuneRun(**base.shared(), model=model, optimizer=optimizer, scheduler=scheduler, masks=masks,
                        mask_path=mask_path, mask_meta=meta)  # fmt: skip
    saved = state.checkpoints.load() if resume else None
    if saved is not None:
        state.checkpoints.restore(saved, model, optimizer, scheduler)
        state.first_step = saved.meta["step"]
        state.best = Best(saved.meta["best"]["value"], saved.meta["best"]["step"])
    return state


def final_evaluation(state: FinetuneRun) -> dict[str, Any]:
    """The selected checkpoint on every ID split and OOD set; its selection-set numbers are reused unless it is
    reloaded in fp32 after autocast training."""
    preset, plan, best, accelerator = state.preset, state.plan, state.best, state.loaded.accelerator
    barrier(accelerator)  # the main process has written the best model
    reusable = best.known if preset.train.mixed_precision == "no" or best.step == plan.max_steps else None
    model = state.model
    if best.step != plan.max_steps:
        model = load_classifier(str(state.out / "model")).to(accelerator.device)
    task = state.inputs.task
    metrics, predictions = evaluate_sets(
        model,
        state.eval_sets,
        task.labels,
        preset.eval.batch_size,
        accelerator.device,
        task.name,
        known=reusable,
        progress=state.ctx.reporter,
    )
    if state.main:
        write_predictions(state.out, state.eval_sets, predictions)
    selection, _ = evaluation_sets(preset, state.eval_sets)
    results = run_results(preset, state.inputs, state.out, plan, best.step, selection, metrics)
    if state.masks is not None:
        results["mask"] = str(state.mask_path)
        results["mask_method"] = mask_method(state.mask_meta)
        # Measured on the saved weights, not the mask: proves the pruned weights stayed zero.
        params = dict(model.named_parameters())
        results["sparsity"] = sparsity_summary({k: params[k].detach().cpu() != 0 for k in state.masks})
    return results


def mask_method(meta: dict[str, Any]) -> str | None:
    """How a mask was found, from its metadata, named as `srnet report` names that search ("lottery-ticket IMP poe",
    "mask-train ce + OOD data", ...); None for a mask without srnet provenance (the original project's)."""
    if meta.get("command") not in ("imp", "mask-train"):
        return None
    return search_name(
        meta["command"],
        meta.get("loss"),
        rewind=meta.get("rewind", "none"),
        ood_data=bool(meta.get("ood_train")),
        pretrained=bool(meta.get("pretrained")),
        initial=meta.get("initial_sparsity"),
        target=meta.get("target_sparsity"),
        model=str(meta.get("model", "")),
    )
