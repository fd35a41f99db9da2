"""`srnet finetune`: the full model with CE or a debiasing loss."""

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
    TaskOpt,
    TeacherOpt,
    WarmupOpt,
    hyper_flags,
    launch,
    print_dry_run,
    resolve,
    training_flags,
)
from srnet_cli.cli.tables import metrics_table

SaveEveryOpt = Annotated[
    int | None, typer.Option("--save-every", help="Also save checkpoints/step-N/ every N steps (timing study).")
]


def finetune(
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
    out: OutOpt = None,
    seed: SeedOpt = None,
    seeds: SeedsOpt = None,
    save_every: SaveEveryOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    device: DeviceOpt = "auto",
    log_with: LogWithOpt = "none",
) -> None:
    """Fine-tune the full model with cross-entropy or a debiasing loss (PoE); keep the best checkpoint.

    Example: srnet finetune --task mnli --loss poe --model minilm --data-dir D --bias B/bias.json --out runs/poe
    """
    hyper = hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup)
    flags = training_flags(task, loss, model, data_dir, bias, seed, teacher, allow_pickle, mixed_precision, hyper, sets)
    flags |= {"train.save_every": save_every}
    resolved = resolve("finetune", preset, task, loss, set_, flags)
    if dry_run:
        return print_dry_run(resolved, json_)
    from srnet_cli.recipes import finetune as recipe

    launch(
        "finetune", recipe, resolved, out, device, quiet, overwrite, json_, metrics_table, seeds, seed, resume, log_with
    )
