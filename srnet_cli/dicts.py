"""The one dict flattener: `{"hans": {"acc": 0.5}}` -> `{"hans.acc": 0.5}` (presets, metrics, tracker configs)."""

from __future__ import annotations

from typing import Any


def flatten(tree: dict[str, Any], prefix: str = "", depth: int | None = None) -> dict[str, Any]:
    """Dotted keys for nested dicts; with `depth`, dicts nested deeper than that many levels are left out."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            if depth is None or depth > 1:
                flat |= flatten(value, f"{prefix}{key}.", None if depth is None else depth - 1)
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A set's numbers as one metrics.jsonl line holds them (`hans.acc`; HANS's per-heuristic tables left out)."""
    return {key: value for key, value in flatten(metrics, depth=2).items() if isinstance(value, int | float)}
