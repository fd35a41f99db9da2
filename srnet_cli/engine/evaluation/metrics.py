"""Evaluation metrics: accuracy, HANS breakdowns (McCoy et al. 2019), paraphrase F1s, FEVER-Symmetric accuracy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import JsonValue

from srnet_cli.engine.data.readers import Example
from srnet_cli.engine.data.tasks import collapse_to_hans

SetMetrics = dict[str, JsonValue]  # metric -> value (HANS tables nest further)
Metrics = dict[str, SetMetrics]  # evaluation set -> its metrics
Predictions = dict[str, list[str]]  # evaluation set -> predicted label names


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (n - 1), the spread over seeds papers report; 0 for a single value."""
    import statistics

    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


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

    def mean(xs: list[bool]) -> float | None:
        return sum(xs) / len(xs) if xs else None

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


def f1_score(predicted: Sequence[str], gold: Sequence[str], positive: str) -> float | None:
    """Binary F1 of class `positive`: 2·TP / (2·TP + FP + FN); 0 when there is no positive anywhere (sklearn's
    zero_division=0), None for an empty set."""
    if not gold:
        return None
    tp = sum(p == positive and g == positive for p, g in zip(predicted, gold, strict=True))
    fp = sum(p == positive and g != positive for p, g in zip(predicted, gold, strict=True))
    fn = sum(p != positive and g == positive for p, g in zip(predicted, gold, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def class_accuracy(predicted: Sequence[str], gold: Sequence[str], label: str) -> float | None:
    """Accuracy on the examples whose gold label is `label` (its recall)."""
    hits = [p == g for p, g in zip(predicted, gold, strict=True) if g == label]
    return sum(hits) / len(hits) if hits else None


def paraphrase_report(predicted: Sequence[str], gold: Sequence[str]) -> dict[str, float | None]:
    """QQP / PAWS: accuracy, binary F1 of `duplicate` (the original's QQP `eval_f1`), F1 of `not_duplicate`, the
    support-weighted F1 (the paper's "F1", the original's `average_f1`), and accuracy per gold class."""
    f1_dup = f1_score(predicted, gold, "duplicate")
    f1_non = f1_score(predicted, gold, "not_duplicate")
    n_dup = sum(g == "duplicate" for g in gold)
    weighted = (
        None
        if not gold or f1_dup is None or f1_non is None
        else ((n_dup * f1_dup + (len(gold) - n_dup) * f1_non) / len(gold))
    )
    return {
        "acc": accuracy(predicted, gold),
        "f1": f1_dup,
        "non_duplicate_f1": f1_non,
        "weighted_f1": weighted,
        "duplicate_acc": class_accuracy(predicted, gold, "duplicate"),
        "non_duplicate_acc": class_accuracy(predicted, gold, "not_duplicate"),
    }


def symmetric_report(predicted: Sequence[str], predicted_2way: Sequence[str], gold: Sequence[str]) -> dict:
    """FEVER-Symmetric. `acc` is the paper's number: the 3-way argmax against the 2-way gold (SUPPORTS / REFUTES),
    so a NOT ENOUGH INFO prediction is wrong. `acc_2way` takes the argmax over SUPPORTS and REFUTES only."""
    return {
        "acc": accuracy(predicted, gold),
        "acc_2way": accuracy(predicted_2way, gold),
        "nei_predicted": sum(p == "NOT ENOUGH INFO" for p in predicted) / len(predicted) if predicted else None,
        "supports_acc": class_accuracy(predicted, gold, "SUPPORTS"),
        "refutes_acc": class_accuracy(predicted, gold, "REFUTES"),
    }
