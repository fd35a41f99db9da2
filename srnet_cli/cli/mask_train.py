"""`srnet mask-train`: learn a binary mask over frozen weights."""

from __future__ import annotations

from typing import Annotated

import typer

from srnet_cli.cli.common import (
    AllowPickleOpt,
    BatchSizeOpt,
    BiasOpt,
    DataDirOpt,
    DeviceOpt,
    DryRunOpt,
    EpochsOpt,
    JsonOpt,
    LogWithOpt,
    LossOpt,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    MixedPrecisionOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    PresetOpt,
    QuietOpt,
    ResumeOpt,
    SeedOpt,
    SeedsOpt,
    SetOpt,
    SetsOpt,
    SparsityOpt,
    TaskOpt,
    TeacherOpt,
    WarmupOpt,
    hyper_flags,
    launch,
    print_dry_run,
    resolve,
    training_flags,
)
from srnet_cli.cli.tables import subnetwork_table

InitialSparsityOpt = Annotated[
    float | None, typer.Option("--initial-sparsity", help="Start of the cubic schedule (gradual sparsity).")
]
TrainWithOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--train-with",
        help="Add the task's OOD training set (mnli: hans, qqp: paws, fever: "
        "symmetric), CE only: the paper's upper bound.",
    ),
]
InitOpt = Annotated[str | None, typer.Option("--init", help="Score initialisation: hard | soft.")]


def mask_train(
    preset: PresetOpt = None,
    task: TaskOpt = None,
    loss: LossOpt = None,
    model: ModelOpt = None,
    data_dir: DataDirOpt = None,
    bias: BiasOpt = None,
    teacher: TeacherOpt = None,
    allow_pickle: AllowPickleOpt = False,
    mixed_precision: MixedPrecisionOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    max_length: MaxLengthOpt = None,
    warmup: WarmupOpt = None,
    sets: SetsOpt = None,
    sparsity: SparsityOpt = None,
    initial_sparsity: InitialSparsityOpt = None,
    init: InitOpt = None,
    train_with: TrainWithOpt = None,
    out: OutOpt = None,
    seed: SeedOpt = None,
    seeds: SeedsOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    device: DeviceOpt = "auto",
    log_with: LogWithOpt = "none",
) -> None:
    """Learn a binary mask over frozen weights (fine-tuned: paradigm a; pre-trained: paradigm c).

    Fixed --sparsity, or gradual from --initial-sparsity on the cubic schedule. Saves masks/best.safetensors,
    selected on the ID dev set after search.select_after of training.
    Example: srnet mask-train --task mnli --loss poe --model runs/ce/model --bias B/bias.json --sparsity 0.5 \\
    --data-dir D --out runs/mask
    """
    hyper = hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup)
    flags = training_flags(
        task, loss, model, data_dir, bias, seed, teacher, allow_pickle, mixed_precision, hyper, sets
    ) | {
        "mask.sparsity": sparsity,
        "search.initial_sparsity": initial_sparsity,
        "search.init": init,
        "search.train_with": train_with or None,
    }
    resolved = resolve("mask-train", preset, task, loss, set_, flags)
    if dry_run:
        return print_dry_run(resolved, json_)
    from srnet_cli.recipes import mask_train as recipe

    launch(
        "mask-train",
        recipe,
        resolved,
        out,
        device,
        quiet,
        overwrite,
        json_,
        subnetwork_table,
        seeds,
        seed,
        resume,
        log_with,
    )
