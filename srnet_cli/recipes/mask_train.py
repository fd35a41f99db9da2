"""`srnet mask-train`: learn a binary mask over frozen weights (paper §3.3; original-repo.md §3).

One real-valued score per masked weight, m = 1[score > φ] with a straight-through estimator; every
`recalibrate_every` steps each matrix's φ is reset so the mask is its top-(1 − s_t) scores, with s_t fixed or on the
cubic schedule. The best mask on the ID dev metric (after `select_after` of training) is saved at the sparsity it
had when it was selected (the original reset it to the initial sparsity first; original-repo.md §9.6). Parameters
the start checkpoint did not have (the random classifier of a pre-trained model) are saved with the mask.

The recipe reads top to bottom: `prepare` (inputs, model, masks and scores, run directory, resumed state), `train`
(the one loop; `SearchRun.on_step` recalibrates the thresholds every interval, `SearchRun.evaluate` selects the
best mask), the final evaluation, `finish`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from srnet_cli.config.schedules import check_resets, cubic_sparsity
from srnet_cli.config.schema import MaskTrainPreset
from srnet_cli.dicts import flat_metrics
from srnet_cli.engine.debias.losses import gate_of
from srnet_cli.engine.evaluation.predict import evaluate_sets, write_predictions
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import check_same_masks
from srnet_cli.engine.runs.resume import prefixed, unprefixed
from srnet_cli.engine.sparse.mask_io import MaskFile, save_mask_file
from srnet_cli.engine.sparse.masks import apply_masks, masks_state, sparsity_summary
from srnet_cli.engine.sparse.pruning import init_scores, recalibrate
from srnet_cli.recipes.budget import budget, prepare_optimizer
from srnet_cli.recipes.inputs import (
    Loaded,
    data_dir_of,
    encode_data,
    evaluation_sets,
    load_inputs,
    load_model,
    load_ood_train,
)
from srnet_cli.recipes.masks import describe_targets, inject_targets, load_weights_into
from srnet_cli.recipes.outputs import run_results
from srnet_cli.recipes.run_state import TrainingRun, open_run, run_training


@dataclass
class BestMask:
    value: float = -math.inf
    step: int | None = None
    masks: dict[str, Any] | None = None
    weights: dict[str, Any] = field(default_factory=dict)  # trainable non-mask parameters at that step
    sparsity: dict[str, Any] | None = None
    known: Any = None  # its (metrics, predictions): not recomputed at the end


@dataclass
class SearchRun(TrainingRun):
    """What one mask search holds between its steps."""

    model: Any
    optimizer: Any
    scheduler: Any
    stored: set[str]  # parameters saved with the mask (a new head, a trained classifier)
    initial: float  # the schedule's first sparsity (= the final one for a fixed search)
    target: float  # the sparsity the masks are recalibrated to now
    provenance: dict[str, Any]  # what every mask file of this search records of how it was found
    first_step: int = 0
    best: BestMask = field(default_factory=BestMask)

    @property
    def recalibrate_every(self) -> int:
        return self.preset.search.recalibrate_every or self.preset.eval.every

    @property
    def select_from(self) -> int:
        return math.ceil(self.preset.search.select_after * self.plan.max_steps)

    def bare_model(self) -> Any:
        return self.loaded.accelerator.unwrap_model(self.model)

    def current_weights(self) -> dict[str, Any]:
        params = dict(self.bare_model().named_parameters())
        return {name: params[name].detach().cpu().clone() for name in sorted(self.stored)}

    def on_step(self, step: int) -> None:
        """Every `recalibrate_every` steps: thresholds reset to the top-(1 - s_t) scores, s_t on the schedule."""
        every_evaluation = self.preset.search.recalibrate_every is None  # the last step is an evaluation too
        if step % self.recalibrate_every == 0 or (every_evaluation and step == self.plan.max_steps):
            mask, search = self.preset.mask, self.preset.search
            self.target = cubic_sparsity(step, self.plan.max_steps, self.initial, mask.sparsity, search.schedule_end)
            recalibrate(self.bare_model(), self.target, mask.scope)

    def evaluate(self, step: int) -> None:
        masks = masks_state(self.bare_model())
        digest = check_same_masks(masks)  # every process must hold the same mask, at every evaluation point
        if step < self.select_from:  # a mask from before selection starts can never be chosen: evaluating it is waste
            return
        preset, task = self.preset, self.inputs.task
        selection, during = evaluation_sets(preset, self.eval_sets)
        summary = sparsity_summary(masks)
        metrics, predictions = evaluate_sets(
            self.model,
            during,
            task.labels,
            preset.eval.batch_size,
            self.loaded.accelerator.device,
            task.name,
            progress=self.ctx.reporter,
        )
        value = metrics[selection.name][preset.eval.metric]
        self.metrics_log.write(
            {
                "step": step,
                "epoch": round(step / self.plan.steps_per_epoch, 3),
                "sparsity": summary["sparsity"],
                "target_sparsity": round(self.target, 6),
                "mask_hash": digest,
                **flat_metrics(metrics),
            }
        )
        improved = value > self.best.value
        if improved:
            # score-mode forward multiplies by an exact 0/1 mask: the fixed mask below gives the same numbers
            self.best = BestMask(value, step, masks, self.current_weights(), summary, (metrics, predictions))
        if improved and self.main:
            save_mask_file(
                self.out / "masks" / "best.safetensors",
                MaskFile(
                    masks,
                    self.best.weights,
                    {
                        **self.provenance,
                        "step": step,
                        "target_sparsity": self.target,
                        "selection": f"{selection.name}.{preset.eval.metric}",
                        "value": value,
                    },
                ),
            )
        self.ctx.reporter.log(
            f"step {step}: sparsity {summary['sparsity']:.4f}, {selection.name} "
            f"{preset.eval.metric} {value:.4f}" + (" (best, mask saved)" if improved else "")
        )

    def checkpoint(self, step: int) -> None:
        best = self.best
        kept = {"value": best.value, "step": best.step} | ({"sparsity": best.sparsity} if best.sparsity else {})
        tensors = prefixed("best_mask.", best.masks) | prefixed("best_weight.", best.weights) if best.masks else {}
        self.checkpoints.save(
            step, self.model, self.optimizer, self.scheduler, {"best": kept, "target_sparsity": self.target}, tensors
        )

    def restore(self) -> None:
        saved = self.checkpoints.load()
        if saved is None:
            return
        self.checkpoints.restore(saved, self.model, self.optimizer, self.scheduler)
        self.first_step, self.target, kept = saved.meta["step"], saved.meta["target_sparsity"], saved.meta["best"]
        self.best = BestMask(kept["value"], kept["step"], sparsity=kept.get("sparsity"))
        if kept["step"] is not None:
            self.best.masks = unprefixed("best_mask.", saved.tensors)
            self.best.weights = unprefixed("best_weight.", saved.tensors)


def run(preset: MaskTrainPreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    return run_training(preset, ctx, overwrite, resume, prepare, final_evaluation)


def prepare(preset: MaskTrainPreset, ctx: RunContext, overwrite: bool, resume: bool) -> SearchRun:
    """Inputs, model, masks and scores checked and built before the run directory is written; then the optimiser
    and any saved state."""
    search, mask_cfg, log = preset.search, preset.mask, ctx.reporter
    inputs = load_inputs(preset, ctx, overwrite, resume=resume)
    if search.train_with:
        inputs.ood_train = load_ood_train(
            inputs.task, search.train_with, search.ood_copies, data_dir_of(preset), preset.data.strict, log
        )
    loaded = load_model(preset, inputs, ctx)
    train_enc, eval_sets = encode_data(preset, inputs, loaded)
    plan = budget(preset, len(train_enc))  # a warm-up longer than the run is refused before writing
    initial = search.initial_sparsity if search.initial_sparsity is not None else mask_cfg.sparsity
    check_resets(search.recalibrate_every, plan.max_steps, initial, mask_cfg.sparsity, search.schedule_end)
    targets, stored = make_searchable(preset, loaded, initial, log)
    base = open_run(preset, ctx, overwrite, resume, inputs, loaded, train_enc, eval_sets, plan)
    model, optimizer, scheduler = prepare_optimizer(preset, loaded.model, loaded.accelerator, plan)
    provenance = {"source": str(base.out), "model": preset.model.name_or_path, "labels": list(inputs.task.labels),
                  "command": "mask-train", "loss": preset.loss.kind, "pretrained": bool(loaded.new_params),
                  "ood_train": bool(search.train_with), "initial_sparsity": initial}  # fmt: skip
    state = SearchRun(**base.shared(), model=model, optimizer=optimizer, scheduler=scheduler, stored=stored,
                      initial=initial, target=initial, provenance=provenance)  # fmt: skip
    schedule = (
        f"cubic {initial:.2f} -> {mask_cfg.sparsity:.2f}"
        if initial != mask_cfg.sparsity
        else f"fixed {mask_cfg.sparsity:.2f}"
    )
    log.log(
        f"mask training: {targets} ({search.init} init, sparsity {schedule}, threshold reset "
        f"every {state.recalibrate_every} steps); {plan.max_steps} steps, loss {preset.loss.kind}, selecting "
        f"from step {state.select_from}"
    )
    if resume:
        state.restore()
    return state


def make_searchable(preset: MaskTrainPreset, loaded: Loaded, initial: float, log: Any) -> tuple[str, set[str]]:
    """Masked layers with scores at the initial sparsity, every weight frozen (the classifier trainable with
    search.train_classifier); returns the masked layers and the parameters to store with the mask."""
    search, mask_cfg, model = preset.search, preset.mask, loaded.model
    structure, names = inject_targets(model, mask_cfg)
    for param in model.parameters():
        param.requires_grad_(False)
    if (gate := gate_of(model)) is not None:  # learned-mixin's gate is part of the loss, not of the subnetwork:
        gate.requires_grad_(True)  # it learns with the scores, as it does with the weights
    init_scores(model, initial, search.init, mask_cfg.scope)
    stored = set(loaded.new_params)
    if stored and search.select_after > 0:
        log.log(
            f"warning: {preset.model.name_or_path} has no trained classifier (a pre-trained model), but masks are "
            f"selected only after {search.select_after:.0%} of training; the paper uses search.select_after=0 "
            "here (presets pt-ce-mnli, pt-poe-mnli)"
        )
    if search.train_classifier:
        head = set(structure.head_params(model))
        for name, param in model.named_parameters():
            if name in head:
                param.requires_grad_(True)
                stored.add(name)
    return describe_targets(structure, names), stored


def final_evaluation(state: SearchRun) -> dict[str, Any]:
    """masks/last, then the selected mask, fixed, with the weights it was selected with, on every set."""
    preset, plan, best, bare = state.preset, state.plan, state.best, state.bare_model()
    if state.main:
        save_mask_file(
            state.out / "masks" / "last.safetensors",
            MaskFile(
                masks_state(bare),
                state.current_weights(),
                {**state.provenance, "step": plan.max_steps, "target_sparsity": state.target},
            ),
        )
    load_weights_into(bare, best.weights, state.out / "masks" / "best.safetensors")
    apply_masks(bare, best.masks)
    task = state.inputs.task
    metrics, predictions = evaluate_sets(
        bare,
        state.eval_sets,
        task.labels,
        preset.eval.batch_size,
        state.loaded.accelerator.device,
        task.name,
        known=best.known,
        progress=state.ctx.reporter,
    )
    if state.main:
        write_predictions(state.out, state.eval_sets, predictions)
    selection, _ = evaluation_sets(preset, state.eval_sets)
    results = run_results(preset, state.inputs, state.out, plan, best.step, selection, metrics)
    results["data"]["ood_train"] = {d.name: len(d.examples) for d in state.inputs.ood_train}
    results["pretrained"] = bool(state.loaded.new_params)  # the searched model had no trained head (paradigm c)
    results |= {"target_sparsity": preset.mask.sparsity, "initial_sparsity": state.initial, "sparsity": best.sparsity}
    results["mask"] = str(state.out / "masks" / "best.safetensors")
    return results
