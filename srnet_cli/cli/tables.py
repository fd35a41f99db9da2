"""Result tables printed to stdout (the JSON object is the machine-readable alternative)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from srnet_cli.cli.common import stdout
from srnet_cli.engine.data.tasks import TASKS


def _pct(value: object) -> str:
    return f"{100 * value:.1f}" if isinstance(value, int | float) else "-"


def metrics_table(results: dict[str, Any], title: str | None = None) -> None:
    metrics = results["metrics"]
    spec = TASKS.get(results.get("task", "mnli"))
    extra = spec.breakdown if spec is not None else ()
    table = Table(title=title or f"{results['command']} · {results.get('model', '')}", title_justify="left")
    for col in ("set", "n", "acc %", *(header for _, header in extra)):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, m in metrics.items():
        table.add_row(name, str(m.get("n", "")), _pct(m.get("acc")), *(_pct(m.get(key)) for key, _ in extra))
    for name in results.get("data", {}).get("missing", []):  # an OOD set not found: named, never silently absent
        table.add_row(name, "missing", *["-"] * (1 + len(extra)))
    stdout.print(table)
    hans = metrics.get("hans")
    if hans and "heuristics" in hans:
        sub = Table(title="HANS by heuristic (accuracy %)", title_justify="left")
        for col in ("heuristic", "entailment", "non-entailment"):
            sub.add_column(col, justify="left" if col == "heuristic" else "right")
        for heuristic, by_label in hans["heuristics"].items():
            sub.add_row(heuristic, _pct(by_label.get("entailment")), _pct(by_label.get("non-entailment")))
        stdout.print(sub)
    if "out" in results:
        stdout.print(f"results: {results['out']}/results.json")


def sparsity_line(results: dict[str, Any]) -> None:
    s = results.get("sparsity")
    if isinstance(s, dict):
        stdout.print(
            f"sparsity {100 * s['sparsity']:.2f}% of {s['masked_weights']:,} masked weights "
            f"({s['layers']} layers); encoder {100 * s['encoder_sparsity']:.2f}%"
        )


def subnetwork_table(results: dict[str, Any]) -> None:
    metrics_table(results)
    sparsity_line(results)


def imp_table(results: dict[str, Any]) -> None:
    rows = results["levels"]
    sets = list(rows[0]["metrics"]) if rows else []
    table = Table(
        title=f"imp · {results['model']} · loss {results['loss']} · rewind {results['rewind']}", title_justify="left"
    )
    for col in ["level", "sparsity %", "step"] + [f"{s} acc %" for s in sets]:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(
            f"{row['level']:.2f}",
            f"{100 * row['sparsity']:.2f}",
            str(row["step"]),
            *(_pct(row["metrics"][s].get("acc")) for s in sets),
        )
    stdout.print(table)
    missing = results.get("data", {}).get("missing", [])
    if missing:
        stdout.print(f"missing (not found under --data-dir, not evaluated): {', '.join(missing)}")
    stdout.print(f"masks: {results['out']}/masks/level-*.safetensors; results: {results['out']}/results.json")


def mask_table(info: dict[str, Any], per_layer: bool) -> None:
    stdout.print(
        f"{info['file']} ({info['format']}): sparsity {100 * info['sparsity']:.2f}% of "
        f"{info['masked_weights']:,} weights in {info['layers']} layers; encoder "
        f"{100 * info['encoder_sparsity']:.2f}%"
    )
    if info["stored_weights"]:
        stdout.print(f"stored with the mask: {', '.join(info['stored_weights'])}")
    if per_layer:
        table = Table(title_justify="left")
        for col in ("layer", "shape", "zeros", "sparsity %"):
            table.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
        for layer in info["per_layer"]:
            table.add_row(
                layer["name"],
                "×".join(map(str, layer["shape"])),
                f"{layer['zeros']:,}",
                f"{100 * layer['sparsity']:.2f}",
            )
        stdout.print(table)


def seeds_table(summary: dict) -> None:
    """Mean ± std over seeds of every final metric."""
    from rich.table import Table

    seeds = ", ".join(str(s) for s in summary["seeds"])
    table = Table(title=f"{summary['command']} · {summary['task']} · seeds {seeds} · mean ± std", title_justify="left")
    for col in ("metric", "mean ± std (%)", "per seed (%)"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key, row in summary["metrics"].items():
        per_seed = " ".join(f"{100 * v:.1f}" for v in row["values"])
        table.add_row(key, f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f}", per_seed)
    stdout.print(table)
    stdout.print(f"summary: {summary['out']}/summary.json")
