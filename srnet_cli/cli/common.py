"""What every command shares: option aliases, error mapping, preset resolution, result output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from srnet_cli.config.loader import default_preset_name, dump_toml, load_preset
from srnet_cli.config.schema import Section
from srnet_cli.errors import UsageError

stderr = Console(stderr=True, soft_wrap=True)
# Outside a terminal (logs, pipes) rich would wrap tables at 80 columns; layer names need more.
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

PresetOpt = Annotated[str | None, typer.Option("--preset", help="Shipped preset name or a .toml path.")]
TaskOpt = Annotated[str | None, typer.Option("--task", help="Task: mnli | qqp | fever.")]
LossOpt = Annotated[str | None, typer.Option("--loss", help="Training loss: ce | poe | reweight | conf-reg.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="HF hub name, local model dir, or `minilm`.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data root holding MNLI/... (docs/reference.md).")]
BiasOpt = Annotated[Path | None, typer.Option("--bias", help="Bias log-probs: srnet bias.json, original .npy or .pkl.")]
TeacherOpt = Annotated[
    Path | None, typer.Option("--teacher", help="conf-reg teacher probs (`srnet evaluate --split train --save-probs`).")
]


def _valid_seeds(value: str | None) -> str | None:
    """--seeds is checked as it is parsed, so --dry-run refuses what the run would refuse."""
    if value is not None:
        from srnet_cli.cli.seeds import parse_seeds

        parse_seeds(value)
    return value


SeedsOpt = Annotated[
    str | None,
    typer.Option(
        "--seeds",
        help="Comma-separated seeds: one run per seed into OUT/seed-N, then mean ± std.",
        callback=_valid_seeds,
    ),
]
MixedPrecisionOpt = Annotated[
    str | None, typer.Option("--mixed-precision", help="no | bf16 | fp16 (fp16 on GPUs only; train.mixed_precision).")
]
AllowPickleOpt = Annotated[
    bool, typer.Option("--allow-pickle", help="Allow a pickled .pkl bias file (pickle can run code: trust it).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Run directory to create.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (train.seed).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a preset key: dotted.key=VALUE (repeatable).")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate and print the resolved preset; load nothing.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the final result as one JSON object on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing srnet run in --out.")]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out from its last saved state (same command/options).")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (the N-th GPU).")]
SparsityOpt = Annotated[
    float | None, typer.Option("--sparsity", help="Sparsity of the masked matrices (mask.sparsity).")
]
# Named hyperparameter flags (sugar for train.* / model.* keys; same precedence as the other named flags)
LrOpt = Annotated[float | None, typer.Option("--lr", help="Peak learning rate (train.lr).")]
EpochsOpt = Annotated[float | None, typer.Option("--epochs", help="Epochs (train.epochs; drops max_steps).")]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Optimiser steps; overrides --epochs.")]
BatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", help="Global batch size (train.batch_size).")]
MaxLengthOpt = Annotated[int | None, typer.Option("--max-length", help="Longest tokenised pair (model.max_length).")]
WarmupOpt = Annotated[
    str | None, typer.Option("--warmup", help="Warm-up: whole steps (500) or a fraction of the run below 1 (0.1).")
]
LogWithOpt = Annotated[
    str,
    typer.Option(
        "--log-with",
        help="Experiment tracker: none | tensorboard | wandb | mlflow (files in OUT; W&B "
        "offline unless WANDB_MODE is set).",
    ),
]
SetsOpt = Annotated[
    str | None,
    typer.Option(
        "--sets",
        help="Evaluate only these sets, comma-separated (e.g. dev_matched,hans; "
        "`srnet tasks` lists them); training still selects on the first ID set.",
    ),
]
UseMaskWeightsOpt = Annotated[
    bool,
    typer.Option(
        "--use-mask-weights",
        help="A torch-pruned mask file (the original IMP's pytorch_model.bin): use "
        "its trained weights (weight_orig) instead of --model's.",
    ),
]
MaskOpt = Annotated[str | None, typer.Option("--mask", help="Mask file, or a run directory holding masks/.")]


def training_flags(
    task: str | None,
    loss: str | None,
    model: str | None,
    data_dir: Path | None,
    bias: Path | None,
    seed: int | None,
    teacher: Path | None,
    allow_pickle: bool,
    mixed_precision: str | None,
    hyper: dict[str, Any],
    sets: str | None,
) -> dict[str, Any]:
    """The named flags the four training commands share, as preset keys (None: not given)."""
    return {
        "task": task,
        "loss.kind": loss,
        "model.name_or_path": model,
        "data.dir": str(data_dir) if data_dir else None,
        "loss.bias": str(bias) if bias else None,
        "train.seed": seed,
        "loss.teacher": str(teacher) if teacher else None,
        "loss.allow_pickle": allow_pickle or None,
        "train.mixed_precision": mixed_precision,
        "eval.sets": sets_flag(sets),
        **hyper,
    }


def hyper_flags(
    lr: float | None,
    epochs: float | None,
    max_steps: int | None,
    batch_size: int | None,
    max_length: int | None,
    warmup: str | None,
) -> dict[str, Any]:
    """The named hyperparameter flags as preset keys; --warmup is steps (an integer) or a ratio (below 1)."""
    flags: dict[str, Any] = {
        "train.lr": lr,
        "train.epochs": epochs,
        "train.max_steps": max_steps,
        "train.batch_size": batch_size,
        "model.max_length": max_length,
    }
    if warmup is not None:
        text = warmup.strip()
        try:
            value = int(text) if text.isdigit() else float(text)
        except ValueError:
            value = None
        if value is None or value < 0 or (isinstance(value, float) and value >= 1):
            raise UsageError(
                f"--warmup {warmup!r} is neither a number of steps nor a fraction of the run below 1",
                "e.g. --warmup 500 (steps) or --warmup 0.1 (10% of the run)",
            )
        flags["train.warmup_steps" if isinstance(value, int) else "train.warmup_ratio"] = value
    return flags


def sets_flag(sets: str | None) -> list[str] | None:
    """`--sets a,b` as eval.sets; an empty list is refused by the preset schema with the task's sets."""
    return None if sets is None else [s.strip() for s in sets.split(",") if s.strip()]


def check_task(task: str | None) -> None:
    from srnet_cli.engine.data.tasks import TASKS

    if task is not None and task not in TASKS:
        raise UsageError(
            f"unknown task {task!r}: srnet knows {', '.join(TASKS)}",
            "pass --task mnli, qqp or fever (`srnet tasks` lists their sets and metrics)",
        )


def check_loss(loss: str | None) -> None:
    from typing import get_args

    from srnet_cli.config.schema import LossKind

    if loss is not None and loss not in get_args(LossKind):
        raise UsageError(
            f"unknown loss {loss!r}: srnet has {', '.join(get_args(LossKind))}", "e.g. --loss poe (lower case)"
        )


def check_device(device: str) -> str:
    index = device.removeprefix("cuda:")
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and index.isdigit()):
        raise UsageError(f"--device {device!r} is not one of auto, cpu, cuda, cuda:N", "e.g. --device cuda:1")
    if device.startswith("cuda:") and "RANK" in os.environ:
        raise UsageError(
            f"--device {device} picks one GPU; under torchrun/accelerate launch each process takes its own",
            "drop --device, or set CUDA_VISIBLE_DEVICES for the launch",
        )
    return device


def resolve(
    command: str, preset: str | None, task: str | None, loss: str | None, sets: list[str] | None, flags: dict[str, Any]
) -> Section:
    """Pick the preset (explicit, or `<loss>-<task>` from --task/--loss), apply --set and flags, validate."""
    check_task(task)
    check_loss(loss)
    if preset is None:
        if task is None:
            raise UsageError(f"{command} needs --preset NAME|PATH or --task", f"e.g. srnet {command} --task mnli")
        preset = default_preset_name(command, task, loss or "ce")
    resolved, _, notes = load_preset(command, preset, sets or [], flags)
    for note in notes:
        stderr.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    return resolved


def run_length(preset: Section) -> str | None:
    """What decides a training run's length (epochs or max_steps), its total steps and warm-up, for --dry-run."""
    from srnet_cli.recipes.budget import steps_of

    train = getattr(preset, "train", None)
    if train is None:
        return None
    data_dir = preset.data.dir  # type: ignore[attr-defined]
    if train.max_steps:
        plan, text = steps_of(train, 1), f"max_steps decides the run: {train.max_steps} steps"
    else:
        from srnet_cli.engine.data.readers import count_training_rows

        counted = count_training_rows(preset.task, Path(data_dir).expanduser()) if data_dir else None  # type: ignore[attr-defined]
        if counted is None:
            return (
                f"epochs decide the run: {train.epochs:g} epochs of the training set at batch {train.batch_size} "
                "(its size is known once the data is read: pass --data-dir to count it now)"
            )
        rows, found = counted
        path = str(found)
        limit = preset.data.train_limit  # type: ignore[attr-defined]
        rows = min(rows, limit) if limit else rows
        if getattr(preset, "kind", "") == "shallow":  # a shallow bias model trains on its subset only
            from srnet_cli.recipes.bias_learner import default_folds, subset_size

            subset = subset_size(preset, rows, default_folds(preset))  # type: ignore[arg-type]
            rows, path = min(rows, subset or rows), f"a subset of {path}"
        plan = steps_of(train, rows)
        text = (
            f"epochs decide the run: {train.epochs:g} epochs x {plan.steps_per_epoch} steps ({rows} training rows in "
            f"{path}, batch {train.batch_size}) = {plan.max_steps} steps"
        )
    text += f"; warm-up {plan.warmup} steps"
    search = getattr(preset, "search", None)
    if search is not None:  # mask training: its threshold resets must reach the final sparsity in this many steps
        from srnet_cli.config.schedules import check_resets

        final = preset.mask.sparsity  # type: ignore[attr-defined]
        initial = final if search.initial_sparsity is None else search.initial_sparsity
        check_resets(search.recalibrate_every, plan.max_steps, initial, final, search.schedule_end)
    if plan.warmup and plan.warmup >= plan.max_steps:
        text += " (not shorter than the run: refused when it starts; pass --warmup 0.1)"
    if search is not None and search.train_with:
        text += " (plus the OOD training data, counted when it is read)"
    return text


def print_dry_run(preset: Section, as_json: bool) -> None:
    length = run_length(preset)
    if length:
        stderr.print(f"[yellow]note:[/] {escape(length)}", highlight=False)
    if as_json:
        print(json.dumps(preset.model_dump(mode="json")))
    else:
        sys.stdout.write(dump_toml(preset))


def require_out(out: Path | None, command: str) -> Path:
    if out is None:
        raise UsageError(f"{command} needs --out DIR for its run directory", f"e.g. srnet {command} ... --out runs/x")
    return out


def launch(
    command: str,
    recipe: Any,
    resolved: Section,
    out: Path | None,
    device: str,
    quiet: bool,
    overwrite: bool,
    as_json: bool,
    table: Callable[[dict[str, Any]], None],
    seeds: str | None = None,
    seed_flag: int | None = None,
    resume: bool = False,
    log_with: str = "none",
) -> None:
    """Run a training recipe with a rich reporter and print its results; with `seeds`, once per seed into
    OUT/seed-N (`{seed}` in a path is replaced by the seed), then mean ± std over the seeds. Under torchrun or
    accelerate launch only the first process reports and prints."""
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.runs.context import NullReporter, RunContext

    if seeds is not None and seed_flag is not None:
        raise UsageError("--seed and --seeds both given", "pass one: --seed N for one run, --seeds 1,2,3 for several")
    if resume and overwrite:
        raise UsageError(
            "--resume and --overwrite both given",
            "--resume continues the run in --out; --overwrite replaces it: pass one",
        )
    out = require_out(out, command)
    check_device(device)
    from srnet_cli.engine.runs.tracking import check_kind

    check_kind(log_with)
    main = os.environ.get("RANK", "0") == "0"
    reporter = NullReporter() if quiet or not main else RichReporter()
    from srnet_cli.cli.seeds import check_seed_dirs, parse_seeds, seed_summary, with_seed
    from srnet_cli.engine.runs.lock import entries

    if seeds is None:
        seed = resolved.train.seed  # type: ignore[attr-defined]
        ctx = RunContext(out, device, reporter, log_with)
        results = recipe.run(with_seed(resolved, seed), ctx, overwrite, resume)
        if main:
            emit(results, as_json, table)
        return
    seed_list = parse_seeds(seeds)
    check_seed_dirs(out, seed_list, overwrite, resume)  # every seed's directory, before the first run spends time
    runs = []
    for seed in seed_list:
        seed_out = out / f"seed-{seed}"
        reporter.log(f"seed {seed}: {seed_out}")
        started = resume and seed_out.is_dir() and bool(entries(seed_out))  # seeds not begun yet start afresh
        seed_ctx = RunContext(seed_out, device, reporter, log_with)
        runs.append(recipe.run(with_seed(resolved, seed), seed_ctx, overwrite, started))
    if not main:
        return
    summary = seed_summary(runs, out)
    if as_json:
        print(json.dumps(summary))
    else:
        for run in runs:
            table(run.json_dict())
        from srnet_cli.cli.tables import seeds_table

        seeds_table(summary)


def emit(results: BaseModel | dict[str, Any], as_json: bool, table: Callable[[dict[str, Any]], None]) -> None:
    """A command's results as one JSON line (--json) or its table; a typed result is dumped as results.json is."""
    if isinstance(results, BaseModel):
        results = results.model_dump(mode="json", exclude_unset=True)
    if as_json:
        print(json.dumps(results))
    else:
        table(results)
