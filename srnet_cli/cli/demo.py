"""`srnet demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srnet_cli.cli.common import (
    DeviceOpt,
    JsonOpt,
    OverwriteOpt,
    QuietOpt,
    check_device,
    emit,
    stdout,
)
from srnet_cli.errors import UsageError

TITLES = {
    "mnli_m": "MNLI-m",
    "mnli_mm": "MNLI-mm",
    "hans": "HANS",
    "hans_entailed": "HANS ent",
    "hans_non_entailed": "HANS non-ent",
    "qqp_acc": "QQP acc",
    "qqp_f1": "QQP F1",
    "paws_qqp_acc": "PAWS-qqp acc",
    "paws_qqp_f1": "PAWS-qqp F1",
    "paws_wiki_acc": "PAWS-wiki acc",
    "paws_wiki_f1": "PAWS-wiki F1",
    "fever_dev": "FEVER dev",
    "sym1": "Symm v1",
    "sym1_2way": "Symm v1 2-way",
    "sym2": "Symm v2",
    "sym2_2way": "Symm v2 2-way",
}


def _table(summary: dict) -> None:
    from rich.table import Table

    title = f"SRNet study · {summary['task']} · {summary['model']} · seed {summary['seed']} (%; F1 = weighted F1)"
    table = Table(title=title, title_justify="left")
    table.add_column("method")
    table.add_column("sparsity", justify="right")
    for key in summary["columns"]:
        table.add_column(TITLES.get(key, key), justify="right")
    section = None
    for row in summary["rows"]:
        if row["section"] != section:
            section = row["section"]
            if table.row_count:
                table.add_section()
            table.add_row(f"[bold]{section}[/bold]")
        cells = ("-" if row[k] is None else f"{100 * row[k]:.1f}" for k in summary["columns"])
        table.add_row(f"  {row['method']}", f"{100 * row['sparsity']:.0f}%", *cells)
    stdout.print(table)
    for finding in summary["findings"]:
        mark = "[green]holds[/green]" if finding["holds"] else "[red]does not hold[/red]"
        stdout.print(f"{mark}: {finding['claim']} ({finding['evidence']})")
    stdout.print(
        f"{summary['seconds']:.0f} s; report: {summary['report']['markdown']}, plot: "
        f"{summary['report']['plot']}, summary: {summary['out']}/summary.json"
    )


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("srnet-demo"),
    task: Annotated[
        str, typer.Option("--task", help="Built-in benchmark: nli (MNLI/HANS), paraphrase (QQP/PAWS), fact (FEVER).")
    ] = "nli",
    model: Annotated[str, typer.Option("--model", help="Model to fine-tune.")] = "minilm",
    quick: Annotated[bool, typer.Option("--quick", help="The same study, smaller and shorter (~3 minutes).")] = False,
    dense_only: Annotated[
        bool, typer.Option("--dense-only", help="Only the bias model and the full CE and PoE models.")
    ] = False,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            min=1,
            help="Fine-tuning and retraining steps (default 200, --quick 60; the PoE model 1.5x, the lottery-ticket "
            "PoE retrain 2x, the PoE mask's retrains 0.35x (1x with --quick), the structured retrain 0.75x).",
        ),
    ] = None,
    train_size: Annotated[
        int | None, typer.Option("--train-size", min=3, help="Generated training pairs (default 8000, --quick 3000).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data, bias model and training.")] = 1,
    mixed_precision: Annotated[
        str | None,
        typer.Option(
            "--mixed-precision",
            help="no (fp32) | bf16 | fp16 (GPUs only). Default: bf16 on a CPU with AMX or AVX512-BF16, else fp32.",
        ),
    ] = None,
    bias_kind: Annotated[
        str | None,
        typer.Option(
            "--bias-kind",
            help="Bias model: the task's hand-made one (default), or shallow | weak-learner (learnt from the data).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Stages run at a time, in worker processes sharing the CPU threads. Default: 2 on a CPU "
            "(faster on 2 cores), 1 on a GPU. 1: one after another in this process.",
        ),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Run the SRNet study on the embedded model: bias model, full models, subnetworks of every paradigm, report.

    Example: srnet demo --out srnet-demo        (also: --quick, --task paraphrase | fact)
    """
    from dataclasses import replace

    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.runs.context import NullReporter
    from srnet_cli.recipes.demo import DEMO_TASKS, DemoSpec, run
    from srnet_cli.recipes.demo import quick as quick_spec

    if task not in DEMO_TASKS:
        raise UsageError(f"--task {task!r} has no built-in benchmark", "use --task nli, paraphrase or fact")
    spec = DemoSpec(model=model, seed=seed, task=task, dense_only=dense_only)
    spec = quick_spec(spec) if quick else spec
    if bias_kind not in (None, "shallow", "weak-learner", DEMO_TASKS[task].bias_kind):
        raise UsageError(
            f"--bias-kind {bias_kind!r} is not a bias model of the {task} demo",
            f"use {DEMO_TASKS[task].bias_kind}, shallow or weak-learner",
        )
    given: dict[str, object] = {
        "steps": steps,
        "train_size": train_size,
        "mixed_precision": mixed_precision,
        "bias_kind": bias_kind,
        "workers": workers,
    }
    spec = replace(spec, **{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
    summary = run(spec, out, check_device(device), NullReporter() if quiet else RichReporter(), overwrite)
    emit(summary, json_, _table)
