"""`srnet report`, rendering: the grouped rows as Markdown, CSV and plots."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from srnet_cli.engine.data.tasks import TASKS
from srnet_cli.engine.runs.files import write_atomic
from srnet_cli.recipes.report.grouping import REPORT_METRICS

# Full-model reference lines: dashed and dotted in colours the method lines (matplotlib's C0..C6) do not use.
REFERENCE_STYLES = [
    {"color": "black", "linestyle": "--"},
    {"color": "dimgray", "linestyle": ":"},
    {"color": "saddlebrown", "linestyle": "-."},
    {"color": "olive", "linestyle": (0, (5, 1))},
]


def cell(row: dict[str, Any], metric: str) -> str:
    """`mean ± std` in %, or the single value of one run (a standard deviation of one run says nothing)."""
    stat = row["metrics"].get(metric)
    if stat is None:
        return "-"
    return f"{100 * stat['mean']:.1f}" if stat["n"] == 1 else f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def markdown(rows: list[dict[str, Any]], incomplete: list[str]) -> str:
    lines = ["# srnet report", ""]
    for task in sorted({r["task"] for r in rows}):
        id_metric, ood_metrics = REPORT_METRICS[task]
        columns = [id_metric, *ood_metrics]
        lines += [
            f"## {task}",
            "",
            "| method | sparsity | runs | " + " | ".join(columns) + " |",
            "|---|---|---|" + "---|" * len(columns),
        ]
        for r in (r for r in rows if r["task"] == task):
            cells = " | ".join(cell(r, m) for m in columns)
            lines.append(f"| {r['method']} | {100 * r['sparsity']:.0f}% | {r['runs']} | {cells} |")
        lines += ["", "Values in %: mean ± sample standard deviation over runs (seeds); one run: its value.", ""]
    if incomplete:
        lines += ["## Incomplete or failed runs (not averaged)", ""] + [f"- {run}" for run in incomplete] + [""]
    return "\n".join(lines)


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "method", "sparsity", "runs", "metric", "mean", "std", "n"])
    for r in rows:
        for metric, stat in r["metrics"].items():
            writer.writerow(
                [
                    r["task"],
                    r["method"],
                    r["sparsity"],
                    r["runs"],
                    metric,
                    f"{stat['mean']:.6f}",
                    f"{stat['std']:.6f}",
                    stat["n"],
                ]
            )
    return buffer.getvalue()


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h"]
LOSS_DISPLAY = {"ce": "CE", "poe": "PoE", "learned-mixin-h": "LM+H", "learned-mixin": "LM", "focal": "focal"}


def display(method: str) -> str:
    """A method's legend label: loss names as papers write them (CE, PoE)."""
    names = "|".join(sorted(map(re.escape, LOSS_DISPLAY), key=len, reverse=True))  # learned-mixin-h first
    return re.sub(rf"\b({names})\b", lambda m: LOSS_DISPLAY[m.group(1)], method)


def _seeds_caption(rows: list[dict[str, Any]]) -> str:
    counts = sorted({r["runs"] for r in rows})
    over = f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]}-{counts[-1]} seeds (report.md: runs)"
    return (
        f"Points and lines: mean over {over}; error bars: ± 1 standard deviation over those seeds (none for a "
        "single seed). Horizontal lines: full (dense) models, and the accuracy of a uniform random guess. Points "
        "at one sparsity are spread a little so that they do not hide each other."
    )


def plot(rows: list[dict[str, Any]], task: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(rows, task)
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)


def figure(rows: list[dict[str, Any]], task: str) -> Any:
    """The ID metric and each OOD metric against sparsity, one line per method; full models and chance as
    horizontal reference lines."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    id_metric, ood_metrics = REPORT_METRICS[task]
    panels = [id_metric, *ood_metrics]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), constrained_layout=True)
    task_rows = [r for r in rows if r["task"] == task]
    for ax, metric in zip(axes, panels, strict=True):
        drawn = _draw_methods(ax, task_rows, metric) + _draw_references(ax, task_rows, metric)
        low, high = min(drawn, default=0.0), max(drawn, default=100.0)
        pad = max(2.0, 0.08 * (high - low))
        ax.set_ylim(max(0.0, low - pad), high + pad)  # every line inside the axes, none on its border
        ax.set_xlabel("sparsity: masked weights set to zero (%)")
        name = TASKS[task].metric_names.get(metric, f"{metric} (%)")
        ax.set_ylabel(name)
        kind = "in-distribution" if metric == id_metric else "out-of-distribution"
        ax.set_title(f"{name.removesuffix(' (%)')} ({kind})", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = [], []
    for ax in axes:  # one legend entry per label, from whichever panel drew it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.suptitle(_seeds_caption(task_rows), fontsize=8, wrap=True)
    return fig


def _draw_methods(ax: Any, task_rows: list[dict[str, Any]], metric: str) -> list[float]:
    """One line per subnetwork method (mean ± std); the y values drawn, for the axis limits."""
    searched = [r for r in task_rows if not r["method"].startswith("full model")]
    methods = sorted({r["method"] for r in searched})
    sparsities = sorted({100 * r["sparsity"] for r in searched})
    span = (max(sparsities) - min(sparsities)) if len(sparsities) > 1 else 10.0
    drawn: list[float] = []
    for i, method in enumerate(methods):
        points = sorted(
            (r["sparsity"], r["metrics"][metric]) for r in searched if r["method"] == method and metric in r["metrics"]
        )
        if not points:
            continue
        dodge = (i - (len(methods) - 1) / 2) * span * 0.008  # side by side, not on top of each other
        ys, errs = [100 * st["mean"] for _, st in points], [100 * st["std"] for _, st in points]
        drawn += [y - e for y, e in zip(ys, errs, strict=True)] + [y + e for y, e in zip(ys, errs, strict=True)]
        # colour, marker and line style all differ, so ten methods stay apart in grey print too
        style = "--" if re.search(r"\bce\b", method.split("(")[0]) else "-"
        ax.errorbar(
            [100 * s + dodge for s, _ in points],
            ys,
            yerr=errs,
            marker=MARKERS[i % len(MARKERS)],
            capsize=3,
            label=display(method),
            linestyle=style,
        )
    if sparsities:
        ax.set_xticks(sparsities)
    return drawn


def _draw_references(ax: Any, task_rows: list[dict[str, Any]], metric: str) -> list[float]:
    """Full models as reference lines, and chance as a light band unlike any model's line."""
    drawn = []
    full = [r for r in task_rows if r["method"].startswith("full model") and metric in r["metrics"]]
    for r, style in zip(full, REFERENCE_STYLES, strict=False):
        drawn.append(100 * r["metrics"][metric]["mean"])
        ax.axhline(drawn[-1], linewidth=1.2, label=display(r["method"]), **style)  # type: ignore[arg-type]
    chance = TASKS[task_rows[0]["task"]].chance if task_rows else {}
    if metric in chance:
        drawn.append(100 * chance[metric])
        ax.axhline(
            drawn[-1], color="#bbbbbb", linewidth=2.5, alpha=0.7, zorder=0, label="chance (uniform random guess)"
        )
    return drawn
