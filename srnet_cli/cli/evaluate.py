"""`srnet evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srnet_cli.cli.common import (
    DataDirOpt,
    DeviceOpt,
    DryRunOpt,
    JsonOpt,
    MaskOpt,
    MixedPrecisionOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    PresetOpt,
    QuietOpt,
    SetOpt,
    SetsOpt,
    TaskOpt,
    UseMaskWeightsOpt,
    check_device,
    emit,
    print_dry_run,
    resolve,
    sets_flag,
)
from srnet_cli.cli.tables import subnetwork_table
from srnet_cli.engine.data.tasks import LAYOUTS
from srnet_cli.errors import UsageError

SplitOpt = Annotated[
    str | None, typer.Option("--split", help="eval (ID dev + OOD sets, default) or train (the training set).")
]
FileOpt = Annotated[
    Path | None, typer.Option("--file", help="Evaluate this one file (with --layout) instead of the task's sets.")
]
LayoutOpt = Annotated[
    str | None, typer.Option("--layout", help="Format of --file: mnli | hans | qqp | paws | fever | fever-sym.")
]
SaveProbsOpt = Annotated[
    Path | None, typer.Option("--save-probs", help="With --split train: write class probabilities by example id.")
]


def evaluate(
    model: ModelOpt = None,
    task: TaskOpt = None,
    data_dir: DataDirOpt = None,
    mask: MaskOpt = None,
    use_mask_weights: UseMaskWeightsOpt = False,
    sets: SetsOpt = None,
    file: FileOpt = None,
    layout: LayoutOpt = None,
    split: SplitOpt = None,
    save_probs: SaveProbsOpt = None,
    mixed_precision: MixedPrecisionOpt = None,
    preset: PresetOpt = None,
    out: OutOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Evaluate a model in-distribution (MNLI, QQP, FEVER dev) and out-of-distribution (HANS, PAWS, FEVER-Symmetric).

    Example: srnet evaluate --model runs/poe/model --task mnli --data-dir D --json
    With --mask FILE|RUN_DIR, the model is evaluated with the mask applied (any model, any mask that fits it).
    With --out DIR, also writes results.json and predictions/ (HANS in the upstream evaluator's format).
    Teacher for conf-reg: srnet evaluate --model runs/ce/model --split train --save-probs teacher.json --data-dir D
    """
    flags = {
        "task": task,
        "model.name_or_path": model,
        "data.dir": str(data_dir) if data_dir else None,
        "mask_file": mask,
        "use_mask_weights": use_mask_weights or None,
        "split": split,
        "save_probs": str(save_probs) if save_probs else None,
        "eval.sets": sets_flag(sets),
        "file": str(file) if file else None,
        "layout": layout,
        "mixed_precision": mixed_precision,
    }
    if (file is None) != (layout is None):
        raise UsageError(
            "--file needs --layout (mnli, hans, qqp, paws, fever, fever-sym), and --layout a --file",
            "e.g. srnet evaluate --model M --file my_hans.txt --layout hans",
        )
    if task is None and layout in LAYOUTS and preset is None:
        task = LAYOUTS[layout]  # --file F --layout hans: the task is implied
        flags["task"] = task
    resolved = resolve("evaluate", preset, task, None, set_, flags)
    if dry_run:
        print_dry_run(resolved, json_)
        return
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.runs.context import NullReporter, RunContext
    from srnet_cli.recipes import evaluate as recipe

    ctx = RunContext(out, check_device(device), NullReporter() if quiet else RichReporter())
    results = recipe.run(resolved, ctx, overwrite)  # type: ignore[arg-type]
    emit(results, json_, subnetwork_table)
