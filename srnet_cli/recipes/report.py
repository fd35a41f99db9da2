"""`srnet report`: collect run directories, group them by task, method and sparsity, and summarise over seeds.

A run is a directory with `results.json` (finetune, retrain, mask-train, imp). Directories that hold a run's
`env.json` or `preset.toml` but no `results.json` are incomplete or failed: listed, never averaged in.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from srnet_cli.dicts import flatten
from srnet_cli.engine.data.tasks import CHANCE, METRIC_NAMES, TASKS
from srnet_cli.engine.evaluation.metrics import mean_std
from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, write_atomic, write_json, write_text_atomic
from srnet_cli.errors import UsageError
from srnet_cli.parsing import json_loads, toml_loads

# Per task: the ID metric and the OOD metrics a report shows (set.metric of the results' `metrics`).
REPORT_METRICS = {name: (spec.report_metrics[0], spec.report_metrics[1:]) for name, spec in TASKS.items()}
TRAINING_COMMANDS = {"finetune", "retrain", "mask-train", "imp"}
# Full-model reference lines: dashed and dotted in colours the method lines (matplotlib's C0..C6) do not use.
REFERENCE_STYLES = [
    {"color": "black", "linestyle": "--"},
    {"color": "dimgray", "linestyle": ":"},
    {"color": "saddlebrown", "linestyle": "-."},
    {"color": "olive", "linestyle": (0, (5, 1))},
]


@dataclass
class Point:
    """One measured (task, method, sparsity) of one run: a finetune, a mask, or one IMP level."""

    task: str
    method: str
    sparsity: float
    seed: int | None
    metrics: dict[str, float]
    run: str
    settings: tuple[tuple[str, str], ...] = ()  # the run's resolved preset, canonical (see `canonical_settings`)


@dataclass
class Collected:
    points: list[Point] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "results.json path: why", for the error when none is read


# Preset keys that do not change a run's numbers (or are the seed itself): never a reason to split a row
NOT_SETTINGS = {"description", "train.seed", "train.checkpoint_every", "train.save_every", "eval.sets",
                "data.require_ood"}  # fmt: skip
PATH_KEYS = ("model.name_or_path", "loss.bias", "loss.teacher", "mask.file", "data.dir")


def canonical_settings(run: Path, seed: int | None) -> tuple[tuple[str, str], ...]:
    """The run's resolved preset (OUT/preset.toml) as sorted `key=value` pairs, without the seed and with the seed
    in input paths written as {seed} (runs/ce/seed-2/model and runs/ce/seed-1/model are one setting); two runs
    average into one report row only when these are equal."""
    path = run / "preset.toml"
    try:
        flat = flatten(toml_loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError):
        return ()  # no (readable) preset: an older run directory, grouped by its method alone
    settings = []
    for key, value in sorted(flat.items()):
        if key in NOT_SETTINGS:
            continue
        if key in PATH_KEYS and isinstance(value, str) and seed is not None:
            value = re.sub(rf"(?<!\d){seed}(?!\d)", "{seed}", value)
        settings.append((key, json.dumps(value)))
    return tuple(settings)


def _value(metrics: dict[str, Any], dotted: str) -> float | None:
    name, key = dotted.split(".", 1)
    value = metrics.get(name, {}).get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        return None  # a hand-edited results.json (a string, NaN, 1e308): not a fraction srnet wrote
    return float(value)


def search_name(
    command: str,
    loss: str | None,
    *,
    rewind: str = "none",
    ood_data: bool = False,
    pretrained: bool = False,
    initial: float | None = None,
    target: float | None = None,
    model: str = "",
) -> str:
    """How a subnetwork was searched (imp, mask-train): the one naming that report rows and retrained masks share."""
    loss_part = f" {loss}" if loss else ""
    if command == "imp":
        return f"{'lottery-ticket IMP' if rewind != 'none' else 'IMP'}{loss_part}"
    if ood_data:
        return f"mask-train{loss_part} + OOD data"
    name = f"mask-train{loss_part}{' (pre-trained)' if pretrained else ''}"
    if initial is not None and target is not None and initial != target:
        name += f" (gradual from {100 * initial:.0f}%)"
    step = re.search(r"checkpoints/step-(\d+)", model)
    return name + (f" (from step {step.group(1)})" if step else "")


def method_of(results: dict[str, Any]) -> str:
    """The paradigm and loss of a run, as a report row names it."""
    command, loss = results["command"], results["loss"]
    if command == "finetune":
        return f"full model {loss}"
    if command == "retrain":  # retrained masks of different searches are different methods
        source = results.get("mask_method")
        return f"retrain {loss}" + (f" ({source} mask)" if source else "")
    return search_name(
        command,
        loss,
        rewind=results.get("rewind", "none"),
        ood_data=bool(results.get("data", {}).get("ood_train")),
        pretrained=bool(results.get("pretrained")),
        initial=results.get("initial_sparsity"),
        target=results.get("target_sparsity"),
        model=str(results.get("model", "")),
    )


def points_of(results: dict[str, Any], run: str) -> list[Point]:
    task, seed, method = results["task"], results.get("seed"), method_of(results)
    id_metric, ood_metrics = REPORT_METRICS[task]

    def numbers(metrics: dict[str, Any]) -> dict[str, float]:
        values = {m: _value(metrics, m) for m in (id_metric, *ood_metrics)}
        return {k: v for k, v in values.items() if v is not None}

    if seed is not None and not isinstance(seed, int):
        raise TypeError(f"seed {seed!r}")
    if results["command"] == "imp":  # grouped by level: every seed prunes to the same schedule
        return [
            Point(task, method, round(level["level"], 2), seed, numbers(level["metrics"]), run)
            for level in results["levels"]
        ]
    sparsity = results.get("sparsity")
    measured = sparsity.get("sparsity", 0.0) if isinstance(sparsity, dict) else 0.0
    # mask-train: the target (seeds of a gradual search may stop at 0.89 and 0.90); others: measured on the weights
    key = results.get("target_sparsity", measured)
    return [Point(task, method, round(float(key), 2), seed, numbers(results["metrics"]), run)]


def collect(paths: list[Path]) -> Collected:
    found = Collected()
    seen: set[Path] = set()  # resolved run paths: overlapping or relative/absolute roots count a run once
    for root in paths:
        if not root.exists():
            raise UsageError(f"{root} does not exist", "pass run directories (or folders that contain them)")
        candidates = {p.parent for p in root.rglob("env.json")} | {p.parent for p in root.rglob("results.json")}
        if (root / "results.json").is_file() or (root / "env.json").is_file():
            candidates.add(root)
        for run in sorted(candidates):
            if run.resolve() in seen:
                continue
            seen.add(run.resolve())
            results_file = run / "results.json"
            if not results_file.is_file():
                found.incomplete.append(str(run))
                continue
            try:
                results = json_loads(results_file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError, OSError) as exc:  # truncated, hand-edited, nested too deeply
                found.incomplete.append(str(run))
                found.unreadable.append(f"{results_file} cannot be read ({exc})")
                continue
            if (
                isinstance(results, dict)
                and results.get("command") in TRAINING_COMMANDS
                and results.get("task") in REPORT_METRICS
            ):
                try:
                    settings = canonical_settings(run, results.get("seed"))
                    found.points.extend(replace(p, settings=settings) for p in points_of(results, str(run)))
                except (KeyError, TypeError, ValueError, AttributeError):  # hand-edited or truncated results
                    found.incomplete.append(str(run))
    return found


def summarise(points: list[Point]) -> list[dict[str, Any]]:
    """One row per (task, method, sparsity, settings): mean and sample std of each metric over the seeds. Runs whose
    resolved presets differ (a scope, an lr, a step count) are separate rows, named by what differs; a seed twice in
    one group starts another row: it is never averaged with itself."""
    groups: dict[tuple[str, str, float, tuple], list[list[Point]]] = {}
    for p in points:
        rows_of_group = groups.setdefault((p.task, p.method, p.sparsity, p.settings), [[]])
        row = next((r for r in rows_of_group if p.seed is None or p.seed not in {q.seed for q in r}), None)
        if row is None:
            rows_of_group.append(row := [])
        row.append(p)
    labels = _distinguishing(list(groups))
    rows = []
    for key, members_rows in sorted(groups.items(), key=lambda kv: kv[0][:3] + (labels[kv[0]],)):
        task, method, sparsity, _ = key
        for k, members in enumerate(members_rows):
            label = labels[key] + (f" (repeat {k + 1} of a seed)" if k else "")
            stats = {}
            for metric in sorted({m for p in members for m in p.metrics}):
                values = [p.metrics[metric] for p in members if metric in p.metrics]
                stats[metric] = {**mean_std(values), "n": len(values)}
            rows.append({"task": task, "method": method + (f" [{label.strip()}]" if label.strip() else ""),
                         "sparsity": sparsity, "runs": len(members), "differs": label.strip(),
                         "seeds": sorted({p.seed for p in members if p.seed is not None}),
                         "metrics": stats})  # fmt: skip
    return rows


def _distinguishing(keys: list[tuple[str, str, float, tuple]]) -> dict[tuple, str]:
    """For groups that share task, method and sparsity but not settings: the `key=value` pairs that tell them apart
    (e.g. `mask.scope="global"`); empty for a group that is alone."""
    labels = {}
    for key in keys:
        rivals = [k for k in keys if k[:3] == key[:3] and k != key]
        if not rivals:
            labels[key] = ""
            continue
        mine = dict(key[3])
        differing = sorted({name for rival in rivals for name, value in
                            set(rival[3]) ^ set(key[3])})  # fmt: skip
        labels[key] = ", ".join(f"{name}={mine.get(name, 'unset')}" for name in differing)
    return labels


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
        ax.set_ylabel(METRIC_NAMES.get(metric, f"{metric} (%)"))
        kind = "in-distribution" if metric == id_metric else "out-of-distribution"
        ax.set_title(f"{METRIC_NAMES.get(metric, metric).removesuffix(' (%)')} ({kind})", fontsize=10)
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
        ax.axhline(drawn[-1], linewidth=1.2, label=display(r["method"]), **style)
    if metric in CHANCE:
        drawn.append(100 * CHANCE[metric])
        ax.axhline(
            drawn[-1], color="#bbbbbb", linewidth=2.5, alpha=0.7, zorder=0, label="chance (uniform random guess)"
        )
    return drawn


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
