"""Evaluation metrics: accuracy and the HANS breakdowns researchers report (McCoy et al. 2019)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from srnet_cli.engine.readers import Example
from srnet_cli.engine.tasks import collapse_to_hans


def accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float | None:
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} examples")
    if not gold:
        return None  # JSON has no NaN: an empty set has no accuracy
    return sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def hans_report(predicted: Sequence[str], examples: Sequence[Example]) -> dict:
    """HANS accuracy, entailed / non-entailed accuracy, and heuristic x gold-label and subcase tables.

    `predicted` are the model's MNLI label names; neutral and contradiction count as non-entailment.
    """
    collapsed = [collapse_to_hans(p) for p in predicted]
    gold = [e.label for e in examples]
    by_key: dict[tuple[str, str], list[bool]] = defaultdict(list)
    by_subcase: dict[str, list[bool]] = defaultdict(list)
    by_label: dict[str, list[bool]] = defaultdict(list)
    for p, e in zip(collapsed, examples, strict=True):
        meta = dict(e.meta)
        ok = p == e.label
        by_key[(meta.get("heuristic", "?"), e.label)].append(ok)
        by_subcase[meta.get("subcase", "?")].append(ok)
        by_label[e.label].append(ok)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    heuristics: dict[str, dict[str, float | None]] = defaultdict(dict)
    for (heuristic, label), oks in sorted(by_key.items()):
        heuristics[heuristic][label] = mean(oks)
    return {
        "acc": accuracy(collapsed, gold),
        "entailed_acc": mean(by_label["entailment"]),
        "non_entailed_acc": mean(by_label["non-entailment"]),
        "heuristics": dict(heuristics),
        "subcases": {k: mean(v) for k, v in sorted(by_subcase.items())},
    }
