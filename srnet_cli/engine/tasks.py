"""Task definitions: label names in the original projects' index order, and which sets belong to a task."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    labels: tuple[str, ...]  # index order of the classifier head (the original project's processor order)
    id_splits: tuple[str, ...]  # evaluation splits of the ID data, the first one selects checkpoints
    ood_sets: tuple[str, ...]


TASKS: dict[str, TaskSpec] = {
    "mnli": TaskSpec(
        name="mnli",
        labels=("contradiction", "entailment", "neutral"),
        id_splits=("dev_matched", "dev_mismatched"),
        ood_sets=("hans",),
    ),
}

HANS_LABELS = ("non-entailment", "entailment")


def task_spec(name: str) -> TaskSpec:
    return TASKS[name]


def collapse_to_hans(label: str) -> str:
    """HANS is 2-way: neutral and contradiction both mean non-entailment (McCoy et al.'s evaluator)."""
    return "entailment" if label == "entailment" else "non-entailment"
