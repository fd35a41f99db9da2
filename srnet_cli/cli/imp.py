"""`srnet imp`: iterative magnitude pruning, after fine-tuning or lottery-ticket style."""

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
from srnet_cli.cli.tables import imp_table

RewindOpt = Annotated[str | None, typer.Option("--rewind", help="none | pretrained | STEP: lottery-ticket rewinding.")]


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
    hyper = hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup)
    flags = training_flags(task, loss, model, data_dir, bias, seed, teacher, allow_pickle, mixed_precision, hyper, sets)
    flags |= {"mask.sparsity": sparsity, "imp.rewind": rewind}
    resolved = resolve("imp", preset, task, loss, set_, flags)
    if dry_run:
        return print_dry_run(resolved, json_)
    from srnet_cli.recipes import imp as recipe

    launch("imp", recipe, resolved, out, device, quiet, overwrite, json_, imp_table, seeds, seed, resume, log_with)
