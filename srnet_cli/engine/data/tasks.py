"""Task definitions: label names in the original projects' index order, and which sets belong to a task."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    labels: tuple[str, ...]  # index order of the classifier head (the original project's processor order)
    id_splits: tuple[str, ...]  # evaluation splits of the ID data, the first one selects checkpoints
    ood_sets: tuple[str, ...]
    ood_train: dict[str, tuple[str, ...]]  # `--train-with` name -> splits holding that OOD training data
    selection_metrics: tuple[str, ...]  # metrics of the first ID split that may select checkpoints
    bias_kinds: tuple[str, ...]  # `srnet bias-model --kind` values for this task (the first is the default)
    report_metrics: tuple[str, ...]  # `srnet report`'s columns and plot panels: the ID metric, then the OOD ones


TASKS: dict[str, TaskSpec] = {
    "mnli": TaskSpec(
        name="mnli",
        labels=("contradiction", "entailment", "neutral"),
        id_splits=("dev_matched", "dev_mismatched"),
        ood_sets=("hans",),
        ood_train={"hans": ("hans_train",)},
        selection_metrics=("acc",),
        bias_kinds=("overlap", "hypothesis-only"),
        report_metrics=("dev_matched.acc", "hans.acc", "hans.non_entailed_acc"),
    ),
    "qqp": TaskSpec(
        name="qqp",
        labels=("not_duplicate", "duplicate"),  # QQP's is_duplicate 0 / 1
        id_splits=("dev",),
        ood_sets=("paws_qqp", "paws_wiki"),
        ood_train={"paws": ("paws_qqp_train", "paws_wiki_train")},
        selection_metrics=("f1", "weighted_f1", "acc"),
        bias_kinds=("overlap",),
        report_metrics=("dev.weighted_f1", "paws_qqp.weighted_f1", "paws_wiki.weighted_f1"),
    ),
    "fever": TaskSpec(
        name="fever",
        labels=("SUPPORTS", "REFUTES", "NOT ENOUGH INFO"),
        id_splits=("dev",),
        ood_sets=("fever_sym1", "fever_sym2"),
        ood_train={"symmetric": ("fever_sym2_dev",)},
        selection_metrics=("acc",),
        bias_kinds=("claim-only",),
        report_metrics=("dev.acc", "fever_sym1.acc", "fever_sym2.acc"),
    ),
}
# `srnet evaluate --file F --layout L`: the task whose labels each upstream layout carries
LAYOUTS = {"mnli": "mnli", "hans": "mnli", "qqp": "qqp", "paws": "qqp", "fever": "fever", "fever-sym": "fever"}
# Metrics in words (report axes), and the accuracy of a uniform random guess where it is well defined (a 3-way MNLI
# guess is right on 1/3 of MNLI, and, collapsed to HANS's 2 classes, on 1/3 of entailed and 2/3 of non-entailed pairs)
METRIC_NAMES = {
    "dev_matched.acc": "MNLI-m accuracy (%)",
    "hans.acc": "HANS accuracy (%)",
    "hans.non_entailed_acc": "HANS non-entailed accuracy (%)",
    "dev.weighted_f1": "QQP dev weighted F1 (%)",
    "paws_qqp.weighted_f1": "PAWS-QQP weighted F1 (%)",
    "paws_wiki.weighted_f1": "PAWS-Wiki weighted F1 (%)",
    "dev.acc": "FEVER dev accuracy (%)",
    "fever_sym1.acc": "FEVER-Symmetric v1 accuracy (%)",
    "fever_sym2.acc": "FEVER-Symmetric v2 accuracy (%)",
}
CHANCE = {
    "dev_matched.acc": 1 / 3,
    "hans.acc": 0.5,
    "hans.non_entailed_acc": 2 / 3,
    "dev.acc": 1 / 3,
    "fever_sym1.acc": 1 / 3,
    "fever_sym2.acc": 1 / 3,
}

HANS_LABELS = ("non-entailment", "entailment")
PARAPHRASE_SETS = frozenset({"train", "dev", "paws_qqp", "paws_wiki"})  # only meaningful for qqp: see report_kind


def task_spec(name: str) -> TaskSpec:
    return TASKS[name]


def report_kind(task: str, set_name: str) -> str:
    """Which metric family an evaluation set reports: hans, paraphrase (F1s), symmetric (FEVER-Symmetric) or acc.
    A custom file (`evaluate --file`) is named `file-<layout>`."""
    layout = set_name.removeprefix("file-") if set_name.startswith("file-") else None
    if layout is not None:
        return {"hans": "hans", "qqp": "paraphrase", "paws": "paraphrase", "fever-sym": "symmetric"}.get(layout, "acc")
    if set_name == "hans":
        return "hans"
    if task == "qqp" and set_name in PARAPHRASE_SETS:
        return "paraphrase"
    if set_name.startswith("fever_sym"):
        return "symmetric"
    return "acc"


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
