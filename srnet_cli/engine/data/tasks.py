"""Task definitions: everything srnet knows of a task in one place. Label names in the original projects' index
order, its evaluation and OOD sets, the upstream files each set is read from (and where the hub has it), the
metrics that select and report, its bias models, its built-in benchmark and the columns its tables show.

Adding a task: one `TaskSpec` here, a reader for any new file layout (readers.py), a synthetic generator
(`srnet data synth`) and its presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SplitFile:
    """Where a split is read from: its upstream layout (the reader) and candidate paths under the task's folder,
    srnet's name first, then the names the data's own release uses (the first that exists is read)."""

    layout: str  # mnli | hans | qqp | paws | fever | fever-sym (also `srnet evaluate --layout`)
    paths: tuple[str, ...]


@dataclass(frozen=True)
class HubSplit:
    """A split the `datasets` hub serves as data files (used when no --data-dir is given)."""

    dataset: str
    config: str | None
    split: str


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
    folder: str  # DATA/<folder> holds the task's files
    files: dict[str, SplitFile]  # every split srnet reads: train, the ID dev splits, OOD sets, OOD training sets
    hub: dict[str, HubSplit]  # the splits the hub has; the others need --data-dir (`srnet data fetch` makes one)
    synth: str  # its built-in benchmark (`srnet data synth --task`)
    breakdown: tuple[tuple[str, str], ...]  # (metric, header) columns beside accuracy in the result tables
    metric_names: dict[str, str]  # `set.metric` in words (report axes)
    chance: dict[str, float]  # `set.metric` of a uniform random guess, where it is well defined


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
        folder="MNLI",
        files={
            "train": SplitFile("mnli", ("train.tsv",)),
            "dev_matched": SplitFile("mnli", ("dev_matched.tsv",)),
            "dev_mismatched": SplitFile("mnli", ("dev_mismatched.tsv",)),
            "hans": SplitFile("hans", ("hans/heuristics_evaluation_set.txt",)),
            "hans_train": SplitFile("hans", ("hans/heuristics_train_set.txt",)),  # the OOD-data upper bound only
        },
        # HANS's hub copy is a dataset script, which `datasets` 4 refuses: it is read from McCoy's files
        hub={
            "train": HubSplit("nyu-mll/glue", "mnli", "train"),
            "dev_matched": HubSplit("nyu-mll/glue", "mnli", "validation_matched"),
            "dev_mismatched": HubSplit("nyu-mll/glue", "mnli", "validation_mismatched"),
        },
        synth="nli",
        breakdown=(("entailed_acc", "entailed %"), ("non_entailed_acc", "non-entailed %")),
        # a 3-way MNLI guess is right on 1/3 of MNLI, and, collapsed to HANS's 2 classes, on 1/3 of entailed and
        # 2/3 of non-entailed pairs
        metric_names={
            "dev_matched.acc": "MNLI-m accuracy (%)",
            "hans.acc": "HANS accuracy (%)",
            "hans.non_entailed_acc": "HANS non-entailed accuracy (%)",
        },
        chance={"dev_matched.acc": 1 / 3, "hans.acc": 0.5, "hans.non_entailed_acc": 2 / 3},
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
        folder="QQP",
        files={
            "train": SplitFile("qqp", ("train.tsv",)),
            "dev": SplitFile("qqp", ("dev.tsv",)),
            # srnet's names first, then the folders and files as google-research-datasets/paws releases them
            "paws_qqp": SplitFile(
                "paws", ("paws_qqp/dev.tsv", "paws_qqp/dev_and_test.tsv", "paws_qqp/output/dev_and_test.tsv")
            ),
            "paws_wiki": SplitFile(
                "paws",
                ("paws_wiki/test.tsv", "paws_wiki_labeled_final/test.tsv", "paws_wiki_labeled_final/final/test.tsv"),
            ),
            "paws_qqp_train": SplitFile("paws", ("paws_qqp/train.tsv", "paws_qqp/output/train.tsv")),
            "paws_wiki_train": SplitFile(
                "paws",
                ("paws_wiki/train.tsv", "paws_wiki_labeled_final/train.tsv", "paws_wiki_labeled_final/final/train.tsv"),
            ),
        },
        hub={
            "train": HubSplit("nyu-mll/glue", "qqp", "train"),
            "dev": HubSplit("nyu-mll/glue", "qqp", "validation"),
            "paws_wiki": HubSplit("google-research-datasets/paws", "labeled_final", "test"),
            "paws_wiki_train": HubSplit("google-research-datasets/paws", "labeled_final", "train"),
        },
        synth="paraphrase",
        breakdown=(
            ("f1", "F1 dup %"),
            ("weighted_f1", "weighted F1 %"),
            ("duplicate_acc", "dup %"),
            ("non_duplicate_acc", "non-dup %"),
        ),
        metric_names={
            "dev.weighted_f1": "QQP dev weighted F1 (%)",
            "paws_qqp.weighted_f1": "PAWS-QQP weighted F1 (%)",
            "paws_wiki.weighted_f1": "PAWS-Wiki weighted F1 (%)",
        },
        chance={},
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
        folder="fever",
        files={
            "train": SplitFile("fever", ("fever.train.jsonl",)),
            "dev": SplitFile("fever", ("fever.dev.jsonl",)),
            # srnet's names first, then TalSchuster/FeverSymmetric's release names (folders or the files themselves)
            "fever_sym1": SplitFile(
                "fever-sym",
                (
                    "sym1/test.jsonl",
                    "symmetric_v0.1/fever_symmetric_generated.jsonl",
                    "fever_symmetric_generated.jsonl",
                ),
            ),
            "fever_sym2": SplitFile(
                "fever-sym",
                ("sym2/test.jsonl", "symmetric_v0.2/fever_symmetric_test.jsonl", "fever_symmetric_test.jsonl"),
            ),
            "fever_sym2_dev": SplitFile(
                "fever-sym", ("sym2/dev.jsonl", "symmetric_v0.2/fever_symmetric_dev.jsonl", "fever_symmetric_dev.jsonl")
            ),
        },
        hub={},
        synth="fact",
        breakdown=(("acc_2way", "2-way acc %"), ("nei_predicted", "NEI predicted %")),
        metric_names={
            "dev.acc": "FEVER dev accuracy (%)",
            "fever_sym1.acc": "FEVER-Symmetric v1 accuracy (%)",
            "fever_sym2.acc": "FEVER-Symmetric v2 accuracy (%)",
        },
        chance={"dev.acc": 1 / 3, "fever_sym1.acc": 1 / 3, "fever_sym2.acc": 1 / 3},
    ),
}
# `srnet evaluate --file F --layout L`: the task whose labels each upstream layout carries
LAYOUTS = {f.layout: spec.name for spec in TASKS.values() for f in spec.files.values()}

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
