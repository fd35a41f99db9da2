"""The demo's report.md and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srnet_cli.engine.runs.files import write_text_atomic
from srnet_cli.recipes.demo.findings import _pct
from srnet_cli.recipes.demo.spec import DEMO_TASKS


def write_report(out: Path, summary: dict[str, Any]) -> dict[str, str]:
    """report.md (the table in the study's order, and the findings) and a plot of the ID and OOD metric against
    sparsity per method, from the run directories (the `srnet report` plot)."""
    from srnet_cli.recipes import report

    collected = report.collect([out])
    plot = out / f"{DEMO_TASKS[summary['task']].task}.png"
    report.plot(report.summarise(collected.points), DEMO_TASKS[summary["task"]].task, plot)
    columns = list(summary["columns"])
    lines = [
        f"# SRNet demo: {summary['task']} · {summary['model']} · seed {summary['seed']}",
        "",
        f"Values in %. Columns: {', '.join(f'{k} = {v}' for k, v in summary['columns'].items())}.",
        "",
        "| section | method | sparsity | " + " | ".join(columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for r in summary["rows"]:
        cells = " | ".join(_pct(r[k]) for k in columns)
        lines.append(f"| {r['section']} | {r['method']} | {100 * r['sparsity']:.0f}% | {cells} |")
    lines += ["", "## The paper's findings on this run", ""]
    lines += [
        f"- {'holds' if f['holds'] else 'does not hold'}: {f['claim']} ({f['evidence']})" for f in summary["findings"]
    ]
    compact = summary.get("compact")
    if compact:
        lines += [
            "",
            f"The structured SRNet as a compact model (`{compact['out']}`): {compact['parameters']:,} of "
            f"{compact['dense_parameters']:,} parameters, {compact['speedup']:.2f}x the dense CE model's pairs/s "
            f"at batch 32 on this machine ({compact['pairs_per_s']:.0f} against {compact['dense_pairs_per_s']:.0f}).",
        ]
    took = f"Total time: {summary['seconds']:.0f} s ({_workers_text(summary)})."
    lines += ["", f"![{summary['task']}]({plot.name})", "", took, ""]
    write_text_atomic(out / "report.md", "\n".join(lines))
    return {"markdown": str(out / "report.md"), "plot": str(plot)}


def _workers_text(summary: dict[str, Any]) -> str:
    workers, threads = summary["workers"], summary["threads_per_worker"]
    return "one stage at a time" if workers == 1 else f"{workers} stages at a time, {threads} thread(s) each"
