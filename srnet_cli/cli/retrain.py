"""`srnet retrain`: fine-tune a masked subnetwork (the finetune recipe with a fixed mask)."""

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
    MaskOpt,
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

CompactOpt = Annotated[
    bool,
    typer.Option(
        "--compact",
        help="A mask of whole heads and FFN neurons: cut them out and retrain the smaller, faster model "
        "(mask.compact; the saved model is compact).",
    ),
]


def retrain(
    mask: MaskOpt = None,
    sparsity: SparsityOpt = None,
    compact: CompactOpt = False,
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
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    device: DeviceOpt = "auto",
    log_with: LogWithOpt = "none",
) -> None:
    """Fine-tune the pre-trained weights of a masked subnetwork; pruned weights stay exactly zero.

    --mask takes a mask file or a run directory (an imp run with --sparsity picks masks/level-S; a mask-train run
    gives masks/best). The classifier is new and dense, as in the paper. With --compact, a structured mask's heads
    and neurons are cut out first, and the compact model is what trains and is saved.
    Example: srnet retrain --task mnli --loss ce --model minilm --mask runs/lt --sparsity 0.5 --data-dir D --out rt
    """
    hyper = hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup)
    flags = training_flags(task, loss, model, data_dir, bias, seed, teacher, allow_pickle, mixed_precision, hyper, sets)
    flags |= {"mask.file": mask, "mask.sparsity": sparsity, "mask.compact": True if compact else None}
    resolved = resolve("retrain", preset, task, loss, set_, flags)
    if dry_run:
        return print_dry_run(resolved, json_)
    from srnet_cli.recipes import finetune as recipe

    launch(
        "retrain",
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
