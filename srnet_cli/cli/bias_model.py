"""`srnet bias-model`."""

from __future__ import annotations

from typing import Annotated

import typer

from srnet_cli.cli.common import (
    BatchSizeOpt,
    DataDirOpt,
    DeviceOpt,
    DryRunOpt,
    EpochsOpt,
    JsonOpt,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    MixedPrecisionOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    PresetOpt,
    QuietOpt,
    SeedOpt,
    SetOpt,
    WarmupOpt,
    check_device,
    check_task,
    emit,
    hyper_flags,
    print_dry_run,
    require_out,
    resolve,
    stdout,
)
from srnet_cli.engine.data.tasks import TASKS
from srnet_cli.errors import UsageError


def _table(results: dict) -> None:
    from rich.table import Table

    table = Table(title=f"bias model · {results['task']} · {results['kind']}", title_justify="left")
    extra = TASKS[results["task"]].breakdown
    for col in ("set", "acc %", *(header for _, header in extra)):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, m in results["metrics"].items():
        cells = [m.get("acc"), *(m.get(key) for key, _ in extra)]
        table.add_row(name, *("-" if v is None else f"{100 * v:.1f}" for v in cells))
    stdout.print(table)
    if "seen_by_own_model" in results:
        seen, total = results["seen_by_own_model"], results["training_examples"]
        stdout.print(
            f"{seen} of {total} training examples were predicted by a model that trained on them (in-sample, "
            "optimistic)" + ("; use --folds K for out-of-fold predictions" if seen else "")
        )
    stdout.print(f"bias file: {results['bias_file']}  (pass it to finetune with --bias)")


LEARNED = ("shallow", "weak-learner")


def bias_model(
    task: Annotated[str, typer.Option("--task", help="Task: mnli | qqp | fever.")] = "mnli",
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="overlap (mnli, qqp: overlap features), hypothesis-only (mnli), claim-only "
            "(fever): bag of words of one side; shallow (the model fine-tuned on a small subset) and "
            "weak-learner (its first layers on all data), for any task. Default: the task's first.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    subset: Annotated[int | None, typer.Option("--subset", help="shallow: training examples (learner.subset).")] = None,
    folds: Annotated[
        int | None, typer.Option("--folds", help="shallow/weak-learner: k-fold out-of-fold predictions (>= 2).")
    ] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="weak-learner: layers kept (learner.layers).")] = None,
    word_vectors: Annotated[
        str | None,
        typer.Option(
            "--word-vectors",
            help="overlap on mnli: vectors of Clark et al.'s similarity features: a fastText .vec file (the "
            "published crawl-300d-2M.vec), model:NAME (that model's input embeddings, offline), or none. "
            "Default: model:minilm.",
        ),
    ] = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    max_length: MaxLengthOpt = None,
    warmup: WarmupOpt = None,
    mixed_precision: MixedPrecisionOpt = None,
    seed: SeedOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    out: OutOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Train a bias-only model; write OUT/bias.json (train log-probs by example id) and print its accuracy.

    Example: srnet bias-model --task mnli --kind overlap --data-dir D --out B
    Example: srnet bias-model --task mnli --kind overlap --word-vectors crawl-300d-2M.vec --data-dir D --out B
    Example: srnet bias-model --task fever --kind claim-only --data-dir D --out B
    Example: srnet bias-model --task mnli --kind shallow --model minilm --folds 5 --data-dir D --out B
    """
    check_task(task)
    kinds = (*TASKS[task].bias_kinds, *LEARNED)
    kind = kind or kinds[0]
    if kind not in kinds:
        raise UsageError(f"--kind {kind!r} is not available for {task}", f"choose one of: {', '.join(kinds)}")
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.runs.context import NullReporter, RunContext

    hyper = hyper_flags(lr, epochs, max_steps, batch_size, max_length, warmup)
    learned = {
        "model.name_or_path": model,
        "learner.subset": subset,
        "learner.folds": folds,
        "learner.layers": layers,
        "train.mixed_precision": mixed_precision,
        "train.seed": seed,
        **hyper,
    }
    reporter = NullReporter() if quiet else RichReporter()
    from srnet_cli.recipes.bias_model import DEFAULT_VECTORS, is_clark_model

    if word_vectors is not None and not is_clark_model(task, kind):
        raise UsageError(
            f"--word-vectors has no effect with --task {task} --kind {kind}",
            "it feeds the similarity features of --task mnli --kind overlap (Clark et al.'s model)",
        )
    if kind not in LEARNED:
        given = [key for key, value in learned.items() if value is not None] + (["--set"] if set_ else [])
        given += (["--preset"] if preset else []) + (["--dry-run"] if dry_run else [])
        if given:
            raise UsageError(
                f"--kind {kind} is a lexical model with no training settings ({given[0]} given)",
                "drop them, or pick --kind shallow or weak-learner",
            )
        from srnet_cli.recipes import bias_model as recipe

        results = recipe.run(
            task,
            kind,
            data_dir,
            require_out(out, "bias-model"),
            reporter,
            overwrite,
            word_vectors or DEFAULT_VECTORS,
        )
        return emit(results, json_, _table)
    learned |= {"task": task, "kind": kind, "data.dir": str(data_dir) if data_dir else None}
    resolved = resolve("bias-model", preset or f"{kind}-{task}", task, None, set_, learned)
    if dry_run:
        return print_dry_run(resolved, json_)
    from srnet_cli.recipes import bias_learner

    ctx = RunContext(require_out(out, "bias-model"), check_device(device), reporter)
    emit(bias_learner.run(resolved, ctx, overwrite), json_, _table)  # type: ignore[arg-type]
