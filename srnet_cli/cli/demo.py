"""`srnet demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srnet_cli.cli.common import DeviceOpt, JsonOpt, OverwriteOpt, QuietOpt, check_device, emit, handles_errors, stdout

COLUMNS = {"mnli_m": "MNLI-m", "mnli_mm": "MNLI-mm", "hans": "HANS", "hans_entailed": "HANS ent",
           "hans_non_entailed": "HANS non-ent"}  # fmt: skip


def _table(summary: dict) -> None:
    from rich.table import Table

    table = Table(title=f"SRNet demo · {summary['model']} · seed {summary['seed']} (accuracy %)", title_justify="left")
    table.add_column("model")
    for title in COLUMNS.values():
        table.add_column(title, justify="right")
    for name, row in summary["rows"].items():
        table.add_row(name, *(f"{100 * row[k]:.1f}" for k in COLUMNS))
    stdout.print(table)
    stdout.print(f"PoE - CE on HANS: {100 * summary['hans_gain_poe_over_ce']:+.1f} points; "
                 f"{summary['seconds']:.0f} s; summary: {summary['out']}/summary.json")  # fmt: skip


@handles_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("srnet-demo"),
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

    Example: srnet demo --out srnet-demo
    """
    from srnet_cli.cli.reporting import RichReporter
    from srnet_cli.engine.context import NullReporter
    from srnet_cli.recipes.demo import DemoSpec, run

    spec = DemoSpec(model=model, steps=steps, train_size=train_size, seed=seed)
    summary = run(spec, out, check_device(device), NullReporter() if quiet else RichReporter(), overwrite)
    emit(summary, json_, _table)
