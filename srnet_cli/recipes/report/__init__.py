"""`srnet report`: collect finished runs, group them (grouping.py) and write Markdown, CSV, JSON and plots
(rendering.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, write_json, write_text_atomic
from srnet_cli.errors import UsageError
from srnet_cli.recipes.report.grouping import REPORT_METRICS, collect, summarise
from srnet_cli.recipes.report.rendering import csv_text, markdown, plot

__all__ = ["REPORT_METRICS", "run"]


def run(paths: list[Path], out: Path | None, overwrite: bool = False) -> dict[str, Any]:
    if out is not None:
        target = out.resolve()
        clash = next(
            (p for p in paths if p.exists() and (target == p.resolve() or p.resolve() in target.parents)), None
        )
        if clash is not None:
            raise UsageError(f"--out {out} is inside the runs it reports on ({clash})", "choose --out outside them")
        check_out_dir(out, overwrite, tuple(paths))
    found = collect(paths)
    if not found.points:
        why = f"; {found.unreadable[0]}" if found.unreadable else ""
        raise UsageError(
            f"no finished srnet runs under {', '.join(map(str, paths))}{why}",
            "pass run directories made by srnet (a damaged results.json: run that run again)",
        )
    rows = summarise(found.points)
    report = {
        "command": "report",
        "rows": rows,
        "incomplete": found.incomplete,
        "runs": sorted({p.run for p in found.points}),
    }
    if out is not None:
        out = prepare_out_dir(out, overwrite, tuple(paths))
        plots = []
        for task in sorted({r["task"] for r in rows}):  # plots first: a failure leaves no half report
            plot(rows, task, out / f"{task}.png")
            plots.append(str(out / f"{task}.png"))
        write_text_atomic(out / "report.md", markdown(rows, found.incomplete))
        write_text_atomic(out / "report.csv", csv_text(rows))
        report |= {"out": str(out), "plots": plots}
        write_json(out / "report.json", report)
    return report
