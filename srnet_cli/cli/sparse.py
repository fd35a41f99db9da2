"""`srnet imp` and `srnet mask-train`: the two ways srnet finds subnetworks."""

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
    sets_flag,
)  # fmt: skip
from srnet_cli.cli.finetune import _flags
from srnet_cli.cli.tables import imp_table, subnetwork_table

RewindOpt = Annotated[str | None, typer.Option("--rewind", help="none | pretrained | STEP: lottery-ticket rewinding.")]
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


def imp(
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
    rewind: RewindOpt = None,
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
    """Iterative magnitude pruning: prune 10% more every tenth of training, to --sparsity (default 0.9).

    From a fine-tuned --model (paradigm a), or lottery-ticket style with --rewind pretrained|STEP (paradigm b).
    Writes masks/level-0.10.safetensors ... and one metrics line per level.
    Example: srnet imp --task mnli --loss poe --model runs/ce/model --bias B/bias.json --data-dir D --out runs/imp
    """
    flags = _flags(task, loss, model, data_dir, bias, seed, teacher, allow_pickle, mixed_precision)
    flags |= hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup) | {"eval.sets": sets_flag(sets)}
    flags |= {"mask.sparsity": sparsity, "imp.rewind": rewind}
    resolved = resolve("imp", preset, task, loss, set_, flags)
    if dry_run:
        return print_dry_run(resolved, json_)
    from srnet_cli.recipes import imp as recipe

    launch("imp", recipe, resolved, out, device, quiet, overwrite, json_, imp_table, seeds, seed, resume, log_with)


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
    flags = _flags(task, loss, model, data_dir, bias, seed, teacher, allow_pickle, mixed_precision)
    flags |= hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup) | {"eval.sets": sets_flag(sets)} | {
        "mask.sparsity": sparsity, "search.initial_sparsity": initial_sparsity, "search.init": init,
        "search.train_with": train_with or None,
    }  # fmt: skip
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
