"""`srnet report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srnet_cli.cli.common import JsonOpt, OverwriteOpt, emit, stdout


def _table(report: dict) -> None:
    from rich.table import Table

    from srnet_cli.recipes.report.grouping import REPORT_METRICS
    from srnet_cli.recipes.report.rendering import cell

    for task in sorted({r["task"] for r in report["rows"]}):
        id_metric, ood_metrics = REPORT_METRICS[task]
        columns = [id_metric, *ood_metrics]
        table = Table(title=f"{task} · mean ± std over runs (%)", title_justify="left")
        for col in ("method", "sparsity", "runs", *columns):
            table.add_column(col, justify="left" if col == "method" else "right")
        for row in (r for r in report["rows"] if r["task"] == task):
            cells = [cell(row, metric) for metric in columns]
            table.add_row(row["method"], f"{100 * row['sparsity']:.0f}%", str(row["runs"]), *cells)
        stdout.print(table)
    for run in report["incomplete"]:
        stdout.print(f"[yellow]incomplete or failed (not averaged):[/] {run}", highlight=False)
    if "out" in report:
        stdout.print(f"written: {report['out']}/report.md, report.csv, report.json, {len(report['plots'])} plot(s)")


def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories, or folders that contain them.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write report.md/.csv/.json and PNG plots here.")] = None,
    json_: JsonOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Group finished runs by task, method and sparsity; mean ± std over seeds; Markdown, CSV, JSON and plots.

    Example: srnet report runs/ --out report
    """
    from srnet_cli.recipes.report import run

    emit(run(runs, out, overwrite), json_, _table)
