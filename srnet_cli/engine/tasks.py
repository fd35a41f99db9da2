"""Task definitions: label names in the original projects' index order, and which sets belong to a task."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    labels: tuple[str, ...]  # index order of the classifier head (the original project's processor order)
    id_splits: tuple[str, ...]  # evaluation splits of the ID data, the first one selects checkpoints
    ood_sets: tuple[str, ...]
    ood_train: dict[str, str]  # `--train-with` name -> split holding that OOD training data


TASKS: dict[str, TaskSpec] = {
    "mnli": TaskSpec(
        name="mnli",
        labels=("contradiction", "entailment", "neutral"),
        id_splits=("dev_matched", "dev_mismatched"),
        ood_sets=("hans",),
        ood_train={"hans": "hans_train"},
    ),
}

HANS_LABELS = ("non-entailment", "entailment")


def task_spec(name: str) -> TaskSpec:
    return TASKS[name]


def label_set(task: TaskSpec, label: str) -> tuple[str, ...]:
    """The task classes a gold label allows: itself, or for HANS non-entailment both contradiction and neutral.

    Training on HANS with a 3-way head maximises p(contradiction) + p(neutral) for non-entailment (the original
    trained it as contradiction, original-repo.md §9.10, which teaches the model a label HANS never states)."""
    if label in task.labels:
        return (label,)
    if task.name == "mnli" and label == "non-entailment":
        return ("contradiction", "neutral")
    raise ValueError(f"label {label!r} has no meaning for task {task.name}")


def collapse_to_hans(label: str) -> str:
    """HANS is 2-way: neutral and contradiction both mean non-entailment (McCoy et al.'s evaluator)."""
    return "entailment" if label == "entailment" else "non-entailment"
