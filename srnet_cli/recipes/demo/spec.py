"""The demo's tasks (which benchmark, bias model and columns) and its settings (sizes, steps, rates)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class DemoTask:
    task: str  # the srnet task reading the benchmark
    bias_kind: str
    layout: str  # for the progress line
    columns: dict[str, tuple[str, str]]  # row key -> (evaluation set, metric)
    id_key: str  # the row keys the findings compare: in-distribution and out-of-distribution
    ood: str


DEMO_TASKS = {
    "nli": DemoTask(
        "mnli",
        "overlap",
        "MNLI + HANS layout, planted overlap shortcut",
        {
            "mnli_m": ("dev_matched", "acc"),
            "mnli_mm": ("dev_mismatched", "acc"),
            "hans": ("hans", "acc"),
            "hans_entailed": ("hans", "entailed_acc"),
            "hans_non_entailed": ("hans", "non_entailed_acc"),
        },
        "mnli_m",
        "hans",
    ),
    "paraphrase": DemoTask(
        "qqp",
        "overlap",
        "QQP + PAWS layout, planted word-overlap shortcut",
        {
            "qqp_acc": ("dev", "acc"),
            "qqp_f1": ("dev", "weighted_f1"),
            "paws_qqp_acc": ("paws_qqp", "acc"),
            "paws_qqp_f1": ("paws_qqp", "weighted_f1"),
            "paws_wiki_acc": ("paws_wiki", "acc"),
            "paws_wiki_f1": ("paws_wiki", "weighted_f1"),
        },
        "qqp_f1",
        "paws_qqp_f1",
    ),
    "fact": DemoTask(
        "fever",
        "claim-only",
        "FEVER + Symmetric layout, planted negation shortcut",
        {
            "fever_dev": ("dev", "acc"),
            "sym1": ("fever_sym1", "acc"),
            "sym1_2way": ("fever_sym1", "acc_2way"),
            "sym2": ("fever_sym2", "acc"),
            "sym2_2way": ("fever_sym2", "acc_2way"),
        },
        "fever_dev",
        "sym1",
    ),
}


@dataclass(frozen=True)
class DemoSpec:
    model: str = "minilm"
    task: str = "nli"  # nli | paraphrase | fact
    seed: int = 1
    train_size: int = 8000
    dev_size: int = 400  # per ID dev split
    hans_per_subcase: int = 40  # x 12 subcases; the other challenge sets get 8 x as many pairs
    steps: int = 200  # fine-tuning and retraining (CE has learnt the task well before the end: CHANGELOG.md)
    # PoE from the pre-trained weights stays at "never entailment" for a long while before it learns the task (the
    # user guide, section 3): its full model gets this many times `steps`
    poe_factor: float = 1.5
    search_steps: int = 100  # mask training
    imp_steps: int = 100  # IMP's t_total: one level every 10% of it (the lottery-ticket search: half)
    lr: float = 5e-5  # the paper's MNLI lr, for every task: 2e-5 (QQP, FEVER at full scale) is too slow here
    # PoE from weights that know nothing of the task learns slowly (user guide, sections 3 and 4): the lottery-ticket
    # retrain gets this many times `steps` at a higher lr (shorter left one seed at "never entailment"), mask training
    # on the pre-trained model this many `search_steps` (3x left it near chance as 1x does, so it runs the search
    # budget: CHANGELOG.md, "Demo budget")
    lt_retrain_lr: float = 1e-4
    lt_retrain_factor: float = 2
    pt_search_factor: float = 1
    # retraining a mask that already carries the task, in `steps`: the PoE mask of (a) from the pre-trained weights,
    # and the structured mask from the CE weights, each near its final MNLI-m well before the end of a longer run
    # (CHANGELOG.md, "Demo budget"); --quick retrains the PoE mask for the full `steps`
    mask_retrain_factor: float = 0.35
    structured_retrain_factor: float = 0.75
    mask_lr: float = 3e-4  # scores move faster than at the paper's 5e-5, so that 100 steps can change the mask
    # paradigm (a); the others use the first, gradual goes first -> last. 60%, not the paper's 70%: a 100-step PoE
    # search of MiniLM-L6-H384 (itself distilled) loses the task at 70% on some seeds (CHANGELOG.md); the paper's
    # SRNets span 20%-70%
    sparsities: tuple[float, ...] = (0.5, 0.6)
    batch_size: int = 32  # the presets' (the paper's)
    dense_only: bool = False  # only the bias model and the two full models
    mixed_precision: str = "auto"  # train.mixed_precision of every run; auto: bf16 on an AMX CPU, else fp32
    bias_kind: str | None = None  # None: the task's hand-made bias model; shallow | weak-learner: learnt from the data
    workers: int = 0  # stages run at a time in worker processes; 0: auto (2 on a CPU with 2+ threads, else 1)


# --quick: the same study, smaller, in three minutes on a 2-core AVX2-only CPU: fewer, cheaper steps (batch 16 at a
# higher lr, the lottery-ticket retrain at 2e-4), smaller evaluation sets. A smoke run of every stage: its numbers
# are much noisier than the full demo's.
QUICK: dict[str, Any] = {
    "train_size": 3000,
    "dev_size": 150,
    "hans_per_subcase": 15,
    "steps": 60,
    "mask_retrain_factor": 1,
    "search_steps": 24,
    "imp_steps": 20,
    "batch_size": 16,
    "lr": 2e-4,
    "lt_retrain_lr": 2e-4,
}


def quick(spec: DemoSpec) -> DemoSpec:
    return replace(spec, **QUICK)
