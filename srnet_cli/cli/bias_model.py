"""`srnet bias-model`."""

from __future__ import annotations

from typing import Annotated

import typer

from srnet_cli.cli.common import (
    DataDirOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    QuietOpt,
    check_task,
    emit,
    require_out,
    stdout,
)
from srnet_cli.engine.tasks import TASKS
from srnet_cli.errors import UsageError


def _table(results: dict) -> None:
    from rich.table import Table

    table = Table(title=f"bias model · {results['task']} · {results['kind']}", title_justify="left")
    extra = {
        "mnli": [("entailed %", "entailed_acc"), ("non-entailed %", "non_entailed_acc")],
        "qqp": [("F1 %", "f1"), ("weighted F1 %", "weighted_f1")],
        "fever": [("2-way acc %", "acc_2way")],
    }[results["task"]]
    for col in ("set", "acc %", *(c for c, _ in extra)):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, m in results["metrics"].items():
        cells = [m.get("acc"), *(m.get(key) for _, key in extra)]
        table.add_row(name, *("-" if v is None else f"{100 * v:.1f}" for v in cells))
    stdout.print(table)
    stdout.print(f"bias file: {results['bias_file']}  (pass it to finetune with --bias)")


def bias_model(
    task: Annotated[str, typer.Option("--task", help="Task: mnli | qqp | fever.")] = "mnli",
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="overlap (mnli, qqp: overlap features), hypothesis-only (mnli), claim-only "
            "(fever): bag of words of one side. Default: the task's first.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    out: OutOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train a bias-only model; write OUT/bias.json (train log-probs by example id) and print its accuracy.

    Example: srnet bias-model --task mnli --kind overlap --data-dir D --out B
    Example: srnet bias-model --task fever --kind claim-only --data-dir D --out B
    """
    check_task(task)
    kinds = TASKS[task].bias_kinds
    kind = kind or kinds[0]
    if kind not in kinds:
        raise UsageError(f"--kind {kind!r} is not available for {task}", f"choose one of: {', '.join(kinds)}")
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.context import NullReporter
    from srnet_cli.recipes import bias_model as recipe

    results = recipe.run(
        task, kind, data_dir, require_out(out, "bias-model"), NullReporter() if quiet else RichReporter(), overwrite
    )
    emit(results, json_, _table)
