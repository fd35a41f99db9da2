"""`srnet demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srnet_cli.cli.common import DeviceOpt, JsonOpt, OverwriteOpt, QuietOpt, check_device, emit, handles_errors, stdout
from srnet_cli.errors import UsageError

TITLES = {"mnli_m": "MNLI-m", "mnli_mm": "MNLI-mm", "hans": "HANS", "hans_entailed": "HANS ent",
          "hans_non_entailed": "HANS non-ent", "qqp_acc": "QQP acc", "qqp_f1": "QQP F1", "paws_qqp_acc": "PAWS-qqp acc",
          "paws_qqp_f1": "PAWS-qqp F1", "paws_wiki_acc": "PAWS-wiki acc", "paws_wiki_f1": "PAWS-wiki F1",
          "fever_dev": "FEVER dev", "sym1": "Symm v1", "sym1_2way": "Symm v1 2-way", "sym2": "Symm v2",
          "sym2_2way": "Symm v2 2-way"}  # fmt: skip


def _table(summary: dict) -> None:
    from rich.table import Table

    title = f"SRNet demo · {summary['task']} · {summary['model']} · seed {summary['seed']} (%; F1 = weighted F1)"
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for key in summary["columns"]:
        table.add_column(TITLES.get(key, key), justify="right")
    for name, row in summary["rows"].items():
        table.add_row(name, *("-" if row[k] is None else f"{100 * row[k]:.1f}" for k in summary["columns"]))
    stdout.print(table)
    ood = TITLES.get(summary["ood_metric"], summary["ood_metric"])
    stdout.print(f"PoE - CE on {ood}: {100 * summary['ood_gain_poe_over_ce']:+.1f} points; "
                 f"{summary['seconds']:.0f} s; summary: {summary['out']}/summary.json")  # fmt: skip


@handles_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("srnet-demo"),
    task: Annotated[
        str, typer.Option("--task", help="Built-in benchmark: nli (MNLI/HANS), paraphrase (QQP/PAWS), fact (FEVER).")
    ] = "nli",
    model: Annotated[str, typer.Option("--model", help="Model to fine-tune.")] = "minilm",
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps per model.")] = 250,
    train_size: Annotated[int, typer.Option("--train-size", min=3, help="Generated training pairs.")] = 8000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data, bias model and training.")] = 1,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Run the study on the embedded model: synth data, bias model, CE and PoE fine-tuning, evaluation.

    Example: srnet demo --out srnet-demo        (also: --task paraphrase | fact)
    """
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.context import NullReporter
    from srnet_cli.recipes.demo import DEMO_TASKS, DemoSpec, run

    if task not in DEMO_TASKS:
        raise UsageError(f"--task {task!r} has no built-in benchmark", "use --task nli, paraphrase or fact")
    spec = DemoSpec(model=model, steps=steps, train_size=train_size, seed=seed, task=task)
    summary = run(spec, out, check_device(device), NullReporter() if quiet else RichReporter(), overwrite)
    emit(summary, json_, _table)
