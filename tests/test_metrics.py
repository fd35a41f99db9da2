"""Metrics against hand-computed values."""

import pytest

from srnet_cli.engine.data.readers import Example
from srnet_cli.engine.data.tasks import collapse_to_hans
from srnet_cli.engine.evaluation.metrics import accuracy, hans_report


def _hans(label: str, heuristic: str, subcase: str) -> Example:
    return Example("ex", "p", "h", label, 0, (("heuristic", heuristic), ("subcase", subcase), ("template", "t1")))


def test_accuracy():
    assert accuracy(["a", "b", "a", "c"], ["a", "b", "b", "b"]) == 0.5
    with pytest.raises(ValueError):
        accuracy(["a"], ["a", "b"])


def test_neutral_and_contradiction_collapse_to_non_entailment():
    assert collapse_to_hans("entailment") == "entailment"
    assert collapse_to_hans("neutral") == "non-entailment"
    assert collapse_to_hans("contradiction") == "non-entailment"


def test_hans_report_by_hand():
    examples = [
        _hans("entailment", "lexical_overlap", "le_a"),
        _hans("entailment", "lexical_overlap", "le_a"),
        _hans("non-entailment", "lexical_overlap", "ln_b"),
        _hans("non-entailment", "subsequence", "sn_c"),
        _hans("non-entailment", "subsequence", "sn_c"),
    ]
    predicted = ["entailment", "neutral", "contradiction", "entailment", "neutral"]
    report = hans_report(predicted, examples)
    # right: 1 (ent), 3 (contradiction -> non-ent), 5 (neutral -> non-ent) -> 3/5
    assert report["acc"] == pytest.approx(3 / 5)
    assert report["entailed_acc"] == pytest.approx(1 / 2)
    assert report["non_entailed_acc"] == pytest.approx(2 / 3)
    assert report["heuristics"]["lexical_overlap"] == {"entailment": 0.5, "non-entailment": 1.0}
    assert report["heuristics"]["subsequence"] == {"non-entailment": 0.5}
    assert report["subcases"] == {"le_a": 0.5, "ln_b": 1.0, "sn_c": 0.5}


def test_empty_groups_are_none_not_nan():
    report = hans_report(["entailment"], [_hans("entailment", "lexical_overlap", "le_a")])
    assert report["non_entailed_acc"] is None  # JSON has no NaN
    assert accuracy([], []) is None
