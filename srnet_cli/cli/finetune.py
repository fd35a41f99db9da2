"""`srnet finetune`."""

from __future__ import annotations

from srnet_cli.cli.common import (
    BiasOpt,
    DataDirOpt,
    DeviceOpt,
    DryRunOpt,
    JsonOpt,
    LossOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    PresetOpt,
    QuietOpt,
    SeedOpt,
    SetOpt,
    TaskOpt,
    check_device,
    emit,
    handles_errors,
    print_dry_run,
    require_out,
    resolve,
)  # fmt: skip
from srnet_cli.cli.tables import metrics_table


@handles_errors
def finetune(
    preset: PresetOpt = None,
    task: TaskOpt = None,
    loss: LossOpt = None,
    model: ModelOpt = None,
    data_dir: DataDirOpt = None,
    bias: BiasOpt = None,
    out: OutOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Fine-tune the full model with cross-entropy or a debiasing loss (PoE); keep the best checkpoint.

    Example: srnet finetune --task mnli --loss poe --model minilm --data-dir D --bias B/bias.json --out runs/poe
    """
    flags = {
        "task": task, "loss.kind": loss, "model.name_or_path": model, "data.dir": str(data_dir) if data_dir else None,
        "loss.bias": str(bias) if bias else None, "train.seed": seed,
    }  # fmt: skip
    resolved = resolve("finetune", preset, task, loss, set_, flags)
    if dry_run:
        print_dry_run(resolved, json_)
        return
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.context import NullReporter, RunContext
    from srnet_cli.recipes import finetune as recipe

    ctx = RunContext(require_out(out, "finetune"), check_device(device), resolved.train.seed,  # type: ignore[attr-defined]
                     NullReporter() if quiet else RichReporter())  # fmt: skip
    results = recipe.run(resolved, ctx, overwrite)  # type: ignore[arg-type]
    emit(results, json_, metrics_table)
