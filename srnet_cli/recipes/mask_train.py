"""`srnet mask-train`: learn a binary mask over frozen weights (paper §3.3; original-repo.md §3).

One real-valued score per masked weight, m = 1[score > φ] with a straight-through estimator; every
`recalibrate_every` steps each matrix's φ is reset so the mask is its top-(1 − s_t) scores, with s_t fixed or on the
cubic schedule. The best mask on the ID dev metric (after `select_after` of training) is saved at the sparsity it
had when it was selected (the original reset it to the initial sparsity first; original-repo.md §9.6). Parameters
the start checkpoint did not have (the random classifier of a pre-trained model) are saved with the mask.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from srnet_cli.config.schedules import check_resets, cubic_sparsity
from srnet_cli.config.schema import MaskTrainPreset
from srnet_cli.dicts import flat_metrics
from srnet_cli.engine.debias.losses import gate_of
from srnet_cli.engine.evaluation.metrics import Metrics, Predictions
from srnet_cli.engine.evaluation.predict import evaluate_sets, write_predictions
from srnet_cli.engine.runs.context import Reporter, RunContext
from srnet_cli.engine.runs.distributed import check_same_masks
from srnet_cli.engine.runs.resume import prefixed, unprefixed
from srnet_cli.engine.sparse.mask_io import MaskFile, MaskMeta, save_mask_file
from srnet_cli.engine.sparse.masks import Masks, apply_masks, masks_state, sparsity_summary
from srnet_cli.engine.sparse.pruning import WEIGHTS, Pattern, init_scores, recalibrate
from srnet_cli.recipes import rundirs
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
from srnet_cli.recipes.outputs import run_results
from srnet_cli.recipes.results import RunResults, Sparsity
from srnet_cli.recipes.run_io import RunIO, finish, open_run, train
from srnet_cli.recipes.subnetworks import describe_targets, inject_targets, load_weights_into


@dataclass
class BestMask:
    value: float = -math.inf
    step: int | None = None
    masks: Masks | None = None
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # trainable non-mask parameters at that step
    sparsity: dict[str, float | int] | None = None
    known: tuple[Metrics, Predictions] | None = None  # its numbers: not recomputed at the end


@dataclass
class SearchRun:
    """What one mask search holds between its steps."""

    io: RunIO[MaskTrainPreset]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    stored: set[str]  # parameters saved with the mask (a new head, a trained classifier)
    initial: float  # the schedule's first sparsity (= the final one for a fixed search)
    target: float  # the sparsity the masks are recalibrated to now
    provenance: MaskMeta  # what every mask file of this search records of how it was found
    pattern: Pattern = WEIGHTS  # what the masks are made of: weights, N:M blocks, heads and neurons
    first_step: int = 0
    best: BestMask = field(default_factory=BestMask)

    @property
    def recalibrate_every(self) -> int:
        return self.io.preset.search.recalibrate_every or self.io.preset.eval.every

    @property
    def select_from(self) -> int:
        return math.ceil(self.io.preset.search.select_after * self.io.plan.max_steps)

    def bare_model(self) -> torch.nn.Module:
        return self.io.bare(self.model)

    def current_weights(self) -> dict[str, torch.Tensor]:
        params = dict(self.bare_model().named_parameters())
        return {name: params[name].detach().cpu().clone() for name in sorted(self.stored)}

    def on_step(self, step: int) -> None:
        """Every `recalibrate_every` steps: thresholds reset to the top-(1 - s_t) scores, s_t on the schedule."""
        every_evaluation = self.io.preset.search.recalibrate_every is None  # the last step is an evaluation too
        if step % self.recalibrate_every == 0 or (every_evaluation and step == self.io.plan.max_steps):
            mask, search = self.io.preset.mask, self.io.preset.search
            self.target = cubic_sparsity(step, self.io.plan.max_steps, self.initial, mask.sparsity, search.schedule_end)
            recalibrate(self.bare_model(), self.target, mask.scope, self.pattern)

    def evaluate(self, step: int) -> None:
        masks = masks_state(self.bare_model())
        digest = check_same_masks(masks)  # every process must hold the same mask, at every evaluation point
        if step < self.select_from:  # a mask from before selection starts can never be chosen: evaluating it is waste
            return
        preset, task = self.io.preset, self.io.inputs.task
        selection, during = evaluation_sets(preset, self.io.eval_sets)
        summary = sparsity_summary(masks)
        metrics, predictions = evaluate_sets(
            self.model,
            during,
            task.labels,
            preset.eval.batch_size,
            self.io.loaded.accelerator.device,
            task.name,
            progress=self.io.ctx.reporter,
        )
        value = metrics[selection.name][preset.eval.metric]
        assert isinstance(value, float)
        self.io.metrics_log.write(
            {
                "step": step,
                "epoch": round(step / self.io.plan.steps_per_epoch, 3),
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
        if improved and self.io.main:
            save_mask_file(
                self.io.out / "masks" / "best.safetensors",
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
        self.io.ctx.reporter.log(
            f"step {step}: sparsity {summary['sparsity']:.4f}, {selection.name} "
            f"{preset.eval.metric} {value:.4f}" + (" (best, mask saved)" if improved else "")
        )

    def checkpoint(self, step: int) -> None:
        best = self.best
        kept = {"value": best.value, "step": best.step} | ({"sparsity": best.sparsity} if best.sparsity else {})
        tensors = prefixed("best_mask.", best.masks) | prefixed("best_weight.", best.weights) if best.masks else {}
        self.io.checkpoints.save(
            step, self.model, self.optimizer, self.scheduler, {"best": kept, "target_sparsity": self.target}, tensors
        )

    def restore(self) -> None:
        saved = self.io.checkpoints.load()
        if saved is None:
            return
        self.io.checkpoints.restore(saved, self.model, self.optimizer, self.scheduler)
        self.first_step, self.target, kept = saved.meta["step"], saved.meta["target_sparsity"], saved.meta["best"]
        self.best = BestMask(kept["value"], kept["step"], sparsity=kept.get("sparsity"))
        if kept["step"] is not None:
            self.best.masks = unprefixed("best_mask.", saved.tensors)
            self.best.weights = unprefixed("best_weight.", saved.tensors)


def run(preset: MaskTrainPreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> RunResults:
    """Inputs checked -> scores over frozen weights -> run directory -> the loop, recalibrating thresholds and
    saving the best mask -> that mask, fixed, on every set."""
    done = rundirs.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
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
    targets, stored, pattern = make_searchable(preset, loaded, initial, log)
    io = open_run(preset, ctx, overwrite, resume, inputs, loaded, train_enc, eval_sets, plan)
    model, optimizer, scheduler = prepare_optimizer(preset, loaded.model, loaded.accelerator, plan)
    state = SearchRun(
        io, model, optimizer, scheduler, stored, initial, initial, provenance(io, initial, pattern), pattern
    )
    log.log(
        f"mask training: {targets} ({search.init} init, sparsity {schedule_name(initial, mask_cfg.sparsity)}, "
        f"threshold reset every {state.recalibrate_every} steps); {plan.max_steps} steps, loss {preset.loss.kind}, "
        f"selecting from step {state.select_from}"
    )
    if resume:
        state.restore()
    train(io, model, optimizer, scheduler, first_step=state.first_step, max_steps=plan.max_steps,
          eval_every=preset.eval.every, evaluate=state.evaluate, on_step=state.on_step,
          checkpoint=state.checkpoint)  # fmt: skip
    results = final_evaluation(state)
    results.seconds = round(time.time() - started, 1)
    return finish(io, results, plan.max_steps)


def provenance(io: RunIO[MaskTrainPreset], initial: float, pattern: Pattern) -> MaskMeta:
    """What every mask file of this search records of how it was found."""
    preset = io.preset
    return {"source": str(io.out), "model": preset.model.name_or_path, "labels": list(io.inputs.task.labels),
            "command": "mask-train", "loss": preset.loss.kind, "pretrained": bool(io.loaded.new_params),
            "ood_train": bool(preset.search.train_with), "initial_sparsity": initial,
            "granularity": pattern.name}  # fmt: skip


def schedule_name(initial: float, final: float) -> str:
    return f"cubic {initial:.2f} -> {final:.2f}" if initial != final else f"fixed {final:.2f}"


def make_searchable(
    preset: MaskTrainPreset, loaded: Loaded, initial: float, log: Reporter
) -> tuple[str, set[str], Pattern]:
    """Masked layers with scores at the initial sparsity, every weight frozen (the classifier trainable with
    search.train_classifier); returns the masked layers and the parameters to store with the mask."""
    search, mask_cfg, model = preset.search, preset.mask, loaded.model
    structure, names, pattern = inject_targets(model, mask_cfg)
    for param in model.parameters():
        param.requires_grad_(False)
    if (gate := gate_of(model)) is not None:  # learned-mixin's gate is part of the loss, not of the subnetwork:
        gate.requires_grad_(True)  # it learns with the scores, as it does with the weights
    init_scores(model, initial, search.init, mask_cfg.scope, pattern)
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
    return describe_targets(structure, names, pattern), stored, pattern


def final_evaluation(state: SearchRun) -> RunResults:
    """masks/last, then the selected mask, fixed, with the weights it was selected with, on every set."""
    preset, plan, best, bare = state.io.preset, state.io.plan, state.best, state.bare_model()
    if state.io.main:
        save_mask_file(
            state.io.out / "masks" / "last.safetensors",
            MaskFile(
                masks_state(bare),
                state.current_weights(),
                {**state.provenance, "step": plan.max_steps, "target_sparsity": state.target},
            ),
        )
    load_weights_into(bare, best.weights, state.io.out / "masks" / "best.safetensors")
    assert best.masks is not None, "the last step is always evaluated and selectable"
    apply_masks(bare, best.masks)
    task = state.io.inputs.task
    metrics, predictions = evaluate_sets(
        bare,
        state.io.eval_sets,
        task.labels,
        preset.eval.batch_size,
        state.io.loaded.accelerator.device,
        task.name,
        known=best.known,
        progress=state.io.ctx.reporter,
    )
    if state.io.main:
        write_predictions(state.io.out, state.io.eval_sets, predictions)
    selection, _ = evaluation_sets(preset, state.io.eval_sets)
    results = run_results(preset, state.io.inputs, state.io.out, plan, best.step, selection, metrics)
    results.data["ood_train"] = {d.name: len(d.examples) for d in state.io.inputs.ood_train}
    results.pretrained = bool(state.io.loaded.new_params)  # the searched model had no trained head (paradigm c)
    results.target_sparsity, results.initial_sparsity = preset.mask.sparsity, state.initial
    results.sparsity = Sparsity.model_validate(best.sparsity)
    results.mask = str(state.io.out / "masks" / "best.safetensors")
    return results
