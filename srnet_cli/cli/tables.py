"""Result tables printed to stdout (the JSON object is the machine-readable alternative)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from srnet_cli.cli.common import stdout


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def metrics_table(results: dict[str, Any], title: str | None = None) -> None:
    metrics = results["metrics"]
    table = Table(title=title or f"{results['command']} · {results.get('model', '')}", title_justify="left")
    for col in ("set", "n", "acc %", "entailed %", "non-entailed %"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, m in metrics.items():
        table.add_row(
            name, str(m.get("n", "")), _pct(m.get("acc")), _pct(m.get("entailed_acc")), _pct(m.get("non_entailed_acc"))
        )
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
