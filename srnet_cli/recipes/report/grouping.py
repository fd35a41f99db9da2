"""`srnet report`, grouping: collect run directories and group their numbers by task, method, sparsity and
settings, with mean and sample standard deviation over seeds.

A run is a directory with `results.json` (finetune, retrain, mask-train, imp). Directories that hold a run's
`env.json` or `preset.toml` but no `results.json` are incomplete or failed: listed, never averaged in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from srnet_cli.dicts import flatten
from srnet_cli.engine.data.tasks import TASKS
from srnet_cli.engine.evaluation.metrics import Metrics, mean_std
from srnet_cli.errors import UsageError
from srnet_cli.parsing import json_loads, toml_loads
from srnet_cli.recipes.naming import method_of
from srnet_cli.recipes.results import RunResults

# Per task: the ID metric and the OOD metrics a report shows (set.metric of the results' `metrics`).
REPORT_METRICS = {name: (spec.report_metrics[0], spec.report_metrics[1:]) for name, spec in TASKS.items()}
TRAINING_COMMANDS = {"finetune", "retrain", "mask-train", "imp"}


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


def _value(metrics: Metrics, dotted: str) -> float | None:
    name, key = dotted.split(".", 1)
    value = metrics.get(name, {}).get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        return None  # a hand-edited results.json (a string, NaN, 1e308): not a fraction srnet wrote
    return float(value)


def points_of(results: RunResults, run: str) -> list[Point]:
    task, seed, method = results.task, results.seed, method_of(results)
    id_metric, ood_metrics = REPORT_METRICS[task]

    def numbers(metrics: Metrics) -> dict[str, float]:
        values = {m: _value(metrics, m) for m in (id_metric, *ood_metrics)}
        return {k: v for k, v in values.items() if v is not None}

    if results.command == "imp":  # grouped by level: every seed prunes to the same schedule
        return [
            Point(task, method, round(level.level, 2), seed, numbers(level.metrics), run) for level in results.levels
        ]
    measured = results.sparsity.sparsity if results.sparsity is not None else 0.0
    # mask-train: the target (seeds of a gradual search may stop at 0.89 and 0.90); others: measured on the weights
    key = results.target_sparsity if results.target_sparsity is not None else measured
    return [Point(task, method, round(key, 2), seed, numbers(results.metrics), run)]


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
            if not (
                isinstance(results, dict)
                and results.get("command") in TRAINING_COMMANDS
                and results.get("task") in REPORT_METRICS
            ):
                continue  # another tool's results.json, or a task this srnet does not know
            try:
                typed = RunResults.model_validate(results)
            except ValidationError as exc:  # hand-edited or truncated results
                found.incomplete.append(str(run))
                found.unreadable.append(f"{results_file} is not srnet's results ({exc.error_count()} invalid fields)")
                continue
            settings = canonical_settings(run, typed.seed)
            found.points.extend(replace(p, settings=settings) for p in points_of(typed, str(run)))
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
