"""`srnet imp`: iterative magnitude pruning (paper §2; original-repo.md §4), with the original's bugs fixed.

After fine-tuning (`imp.rewind = "none"`): start from a fine-tuned model, prune to `rate` at t = 0 and to the next
level every interval (rate·t_total steps), training with the chosen loss in between and resetting the optimiser at
each prune. A level's result is the model at the end of its interval.
Lottery ticket (`"pretrained"` or a step N): the same, but after each prune the surviving weights return to the
values saved at t = 0 (pre-trained) or at step N; the saved values are copies, so the rewind is real.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from srnet_cli.config.schedules import imp_level_count
from srnet_cli.config.schema import ImpPreset
from srnet_cli.dicts import flat_metrics
from srnet_cli.engine.evaluation.predict import evaluate_sets
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import check_same_masks
from srnet_cli.engine.runs.faults import fault_point
from srnet_cli.engine.runs.files import save_model_atomic
from srnet_cli.engine.runs.resume import SavedState, prefixed, unprefixed
from srnet_cli.engine.sparse.mask_io import MaskFile, save_mask_file
from srnet_cli.engine.sparse.masks import Masks, masks_state, sparsity_summary
from srnet_cli.engine.sparse.pruning import Pattern, apply_level, rewind, snapshot
from srnet_cli.engine.training.loop import adamw, linear_warmup_decay
from srnet_cli.errors import UsageError
from srnet_cli.recipes import rundirs
from srnet_cli.recipes.budget import budget
from srnet_cli.recipes.eval_data import data_report, set_rows
from srnet_cli.recipes.inputs import encode_data, load_inputs, load_model
from srnet_cli.recipes.results import ImpLevel, RunResults
from srnet_cli.recipes.run_io import RunIO, finish, open_run, train
from srnet_cli.recipes.subnetworks import describe_targets, inject_targets, level_name


def levels(rate: float, final: float) -> list[float]:
    """rate, 2·rate, ... ending exactly at `final` (0.1 ... 0.9 for the paper's settings); the preset refused any
    other schedule (`imp_level_count`)."""
    count = imp_level_count(rate, final)
    return [round(rate * k, 6) for k in range(1, count)] + [round(final, 6)]


@dataclass
class Level:
    """The level being trained: what the per-step callbacks see of it."""

    index: int
    sparsity_target: float
    masks: Masks
    sparsity: dict[str, float | int]
    hash: str
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


@dataclass
class ImpRun:
    """What one IMP run holds across its levels."""

    io: RunIO[ImpPreset]
    schedule: list[float]
    interval: int  # steps per level
    wanted: set[float] | None  # the levels to evaluate (every level's mask is saved); None: all
    model: torch.nn.Module  # prepared for the device; replaced at every level (a new optimiser is prepared with it)
    pattern: Pattern  # what a prune removes: weights, N:M blocks, heads and neurons
    rewind_to: dict[str, torch.Tensor] | None = None  # the weights surviving ones return to after each prune
    rows: list[ImpLevel] = field(default_factory=list)  # every evaluated level's sparsity and metrics
    start: int = 0  # first level to run
    mid_level: SavedState | None = None  # a state saved inside that level
    level: Level | None = None

    @property
    def rewind_mode(self) -> str:
        return self.io.preset.imp.rewind

    def bare_model(self) -> torch.nn.Module:
        return self.io.bare(self.model)

    def snapshot_for_rewind(self, step: int) -> None:
        if self.rewind_mode.isdigit() and step == int(self.rewind_mode):
            self.rewind_to = snapshot(self.bare_model())
            self.io.ctx.reporter.log(f"step {step}: weights saved for rewinding")

    def evaluate(self, step: int) -> None:
        assert self.level is not None
        level, sparsity, preset, task = self.level, self.level.sparsity, self.io.preset, self.io.inputs.task
        log = self.io.ctx.reporter
        if self.io.main:  # every level's mask is saved, evaluated or not
            save_mask_file(
                self.io.out / "masks" / level_name(level.sparsity_target),
                MaskFile(
                    level.masks,
                    {},
                    {
                        "source": str(self.io.out),
                        "model": preset.model.name_or_path,
                        "labels": list(task.labels),
                        "command": "imp",
                        "loss": preset.loss.kind,
                        "rewind": self.rewind_mode,
                        "granularity": self.pattern.name,
                        "level": level.sparsity_target,
                        "step": step,
                    },
                ),
            )
            if preset.imp.save_models:
                target = self.io.out / "models" / f"level-{level.sparsity_target:.2f}"
                save_model_atomic(self.bare_model(), self.io.loaded.tokenizer, target)
        if self.wanted is not None and level.sparsity_target not in self.wanted:
            log.log(
                f"level {level.sparsity_target:.2f} (sparsity {sparsity['sparsity']:.4f}), step {step}: mask "
                "saved, not evaluated"
            )
            return
        metrics, _ = evaluate_sets(
            self.model,
            self.io.eval_sets,
            task.labels,
            preset.eval.batch_size,
            self.io.loaded.accelerator.device,
            task.name,
            progress=log,
        )
        self.rows.append(ImpLevel(level=level.sparsity_target, step=step, **sparsity, metrics=metrics))
        log.log(f"level {level.sparsity_target:.2f}: mask hash {level.hash} (equal on every process)")
        if not self.io.main:
            return
        self.io.metrics_log.write(
            {
                "level": level.sparsity_target,
                "step": step,
                "sparsity": sparsity["sparsity"],
                "mask_hash": level.hash,
                **flat_metrics(metrics),
            }
        )
        log.log(
            f"level {level.sparsity_target:.2f} (sparsity {sparsity['sparsity']:.4f}), step {step}: "
            + ", ".join(f"{s.name} acc {metrics[s.name]['acc']:.4f}" for s in self.io.eval_sets)
        )

    def checkpoint(self, step: int) -> None:
        assert self.level is not None
        keep_rewind = self.rewind_mode.isdigit() and self.rewind_to is not None
        rows = [row.model_dump(mode="json") for row in self.rows]
        meta = {"level_index": self.level.index, "rows": rows, "has_rewind": keep_rewind}
        tensors = prefixed("rewind.", self.rewind_to) if keep_rewind and self.rewind_to else {}
        self.io.checkpoints.save(step, self.model, self.level.optimizer, self.level.scheduler, meta, tensors)

    def restore(self) -> None:
        """A finished level's state starts the next level from its result; a state inside a level resumes it."""
        saved = self.io.checkpoints.load()
        if saved is None:
            return
        self.rows = [ImpLevel.model_validate(row) for row in saved.meta["rows"]]
        self.start = saved.meta["level_index"]
        if saved.meta["has_rewind"]:  # a step-N snapshot; the pre-trained one was just taken again
            self.rewind_to = unprefixed("rewind.", saved.tensors)
        if saved.meta["step"] == (self.start + 1) * self.interval:
            self.io.checkpoints.restore(saved, self.model, None, None)
            self.start += 1
        else:
            self.mid_level = saved


def run(preset: ImpPreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> RunResults:
    """Schedule and inputs checked -> run directory -> per level: prune (and rewind), train its interval, record
    the level."""
    done = rundirs.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
    schedule, wanted = check_schedule(preset)
    inputs = load_inputs(preset, ctx, overwrite, resume=resume)
    plan = budget(preset, len(inputs.train.examples))
    interval = level_interval(preset, plan.max_steps)
    loaded = load_model(preset, inputs, ctx)
    train_enc, eval_sets = encode_data(preset, inputs, loaded)
    structure, names, pattern = inject_targets(loaded.model, preset.mask)
    io = open_run(preset, ctx, overwrite, resume, inputs, loaded, train_enc, eval_sets, plan)
    rewind_to = snapshot(loaded.model) if preset.imp.rewind == "pretrained" else None
    state = ImpRun(io, schedule, interval, wanted, loaded.model, pattern, rewind_to)
    ctx.reporter.log(
        f"{describe_targets(structure, names, pattern)}; {len(schedule)} levels ({schedule[0]:.2f} to "
        f"{schedule[-1]:.2f}), {interval} steps each (t_total {plan.max_steps}), loss "
        f"{preset.loss.kind}, rewind {preset.imp.rewind}"
    )
    if resume:
        state.restore()
    for k in range(state.start, len(schedule)):
        run_level(state, k)
    results = RunResults(command="imp", task=inputs.task.name, loss=preset.loss.kind,
                         model=preset.model.name_or_path, rewind=preset.imp.rewind, seed=preset.train.seed,
                         out=str(io.out), steps=interval * len(schedule), interval=interval, levels=state.rows,
                         data={"train_rows": set_rows(inputs.train),
                               **data_report(inputs.eval_datasets, inputs.missing)},
                         seconds=round(time.time() - started, 1))  # fmt: skip
    return finish(io, results, interval * len(schedule))


def level_interval(preset: ImpPreset, max_steps: int) -> int:
    """Steps per level (rate·t_total); a rewind step after the first level is refused."""
    interval = max(1, int(max_steps * preset.imp.rate + 1e-9))
    rewind_mode = preset.imp.rewind
    if rewind_mode.isdigit() and int(rewind_mode) > interval:
        raise UsageError(
            f"imp.rewind step {rewind_mode} is after the first level's {interval} steps",
            f"rewind to a step <= {interval}, or use --rewind pretrained",
        )
    return interval


def check_schedule(preset: ImpPreset) -> tuple[list[float], set[float] | None]:
    """The levels, and the ones to evaluate; both are usage errors before anything is read."""
    schedule = levels(preset.imp.rate, preset.mask.sparsity)
    if not schedule:
        raise UsageError(
            f"--sparsity {preset.mask.sparsity} is below the first level ({preset.imp.rate})",
            "pass --sparsity of at least imp.rate (e.g. 0.9)",
        )
    # levels are rounded to 6 digits (`levels`): so are the ones to evaluate, and then compare exactly
    wanted = None if preset.imp.evaluate_levels is None else {round(x, 6) for x in preset.imp.evaluate_levels}
    unknown = sorted(wanted - set(schedule)) if wanted else []
    if unknown:
        raise UsageError(
            f"imp.evaluate_levels {unknown} are not levels of this schedule ({schedule})",
            "pick levels that are multiples of imp.rate up to --sparsity",
        )
    return schedule, wanted


def run_level(state: ImpRun, k: int) -> None:
    """Prune to level k (and rewind), then train its interval with a fresh optimiser."""
    preset, accelerator = state.io.preset, state.io.accelerator
    resumed = state.mid_level is not None and k == state.start
    model = state.bare_model()
    fault_point("level")
    if not resumed:  # (a resumed level's weights and masks come from its saved state)
        apply_level(model, state.schedule[k], preset.mask.scope, state.pattern)  # the smallest remaining ones
        if k > 0 and state.rewind_to is not None:
            rewind(model, state.rewind_to)  # surviving weights back to the saved values; pruned ones stay zero
    # A new optimiser per level (Adam moments reset); lr back to its peak, decaying over t_total, no warm-up, as in
    # the original trainer_imp. free_memory drops accelerate's references to the previous level's optimiser, whose
    # moments would otherwise stay alive (two model-sized tensors per level).
    accelerator.free_memory()
    optimizer = adamw(model, preset.train.lr, preset.train.weight_decay)
    scheduler = linear_warmup_decay(optimizer, 0, state.io.plan.max_steps)
    state.model, optimizer = accelerator.prepare(model, optimizer)
    first = k * state.interval
    if resumed:
        assert state.mid_level is not None
        state.io.checkpoints.restore(state.mid_level, state.model, optimizer, scheduler)
        first = state.mid_level.meta["step"]
    masks = masks_state(model)
    state.level = Level(
        k, state.schedule[k], masks, sparsity_summary(masks), check_same_masks(masks), optimizer, scheduler
    )
    train(state.io, state.model, optimizer, scheduler, first_step=first, max_steps=(k + 1) * state.interval,
          eval_every=state.interval, evaluate=state.evaluate, on_step=state.snapshot_for_rewind,
          checkpoint=state.checkpoint)  # fmt: skip
