"""Preset schema: one pydantic section model per concern, one preset model per command.

Every model forbids unknown keys, so a typo in a preset is an error, not a silently ignored setting
(the original project's HfArgumentParser dropped unknown flags; see original-repo.md §9 item 18).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from srnet_cli.config.schedules import imp_level_count
from srnet_cli.engine.data.tasks import LAYOUTS, TASKS  # plain task facts, no torch


def _known(kind: str, known: list[str]) -> AfterValidator:
    """A name checked against the task definitions (engine/data/tasks.py), the one list of tasks and layouts."""

    def check(name: str) -> str:
        if name not in known:
            raise ValueError(f"unknown {kind} {name!r}; use one of {', '.join(known)}")
        return name

    return AfterValidator(check)


TaskName = Annotated[str, _known("task", list(TASKS))]
LayoutName = Annotated[str, _known("layout", list(LAYOUTS))]
LossKind = Literal["ce", "poe", "reweight", "conf-reg", "learned-mixin", "learned-mixin-h", "focal"]
LOSSES_NEEDING_BIAS = ("poe", "reweight", "conf-reg", "learned-mixin", "learned-mixin-h", "focal")


SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit


class Section(BaseModel):
    # strict: `max_steps = true` is an error, not 1 (lax pydantic reads a bool as an int and "1" as 1)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class ModelCfg(Section):
    name_or_path: str = Field("bert-base-uncased", min_length=1, description="HF hub name, local path, or `minilm`")
    max_length: int = Field(128, ge=8, le=512, description="longest tokenised pair; longer pairs are truncated")


class DataCfg(Section):
    dir: str | None = Field(None, description="data root holding MNLI/...; unset: the datasets hub (online only)")
    strict: bool = Field(False, description="a malformed row is an error instead of being counted and skipped")
    train_limit: int | None = Field(None, ge=1, description="use only the first N training examples")
    train_ids: str | None = Field(
        None, description="train only on the examples whose ids this file lists, one per line (bias-model folds)"
    )
    require_ood: bool = Field(False, description="a missing OOD set is an error (CI, cron) instead of 'missing'")


class LossCfg(Section):
    kind: LossKind = "ce"
    bias: str | None = Field(None, description="bias-model log-probs: srnet .json, the original .npy, or .pkl")
    teacher: str | None = Field(None, description="conf-reg: teacher probabilities (`evaluate --save-probs`)")
    anneal: tuple[float, float] | None = Field(
        None,
        strict=False,
        description="[min, max]: bias probabilities raised to a power decaying linearly from max "
        "to min, renormalised (the annealed losses of Utama et al. 2020); unset: no annealing",
    )
    allow_pickle: bool = Field(False, description="allow a pickled (.pkl) bias file; pickle can run code: trust it")
    entropy_weight: float = Field(
        0.03, ge=0, description="learned-mixin-h: weight w_H of the gate's entropy penalty (Clark et al.'s 0.03)"
    )
    gamma: float = Field(2.0, ge=0, description="focal: the exponent of (1 - p_bias(y)) (Karimi Mahabadi et al.: 2)")

    @model_validator(mode="after")
    def _inputs_when_needed(self) -> LossCfg:
        if self.kind in LOSSES_NEEDING_BIAS and not self.bias:
            raise ValueError(f"loss {self.kind!r} needs a bias file: pass --bias PATH or set loss.bias")
        if self.kind == "conf-reg" and not self.teacher:
            raise ValueError(
                "loss 'conf-reg' needs teacher probabilities: pass --teacher PATH (made by "
                "`srnet evaluate --split train --save-probs PATH` on the CE model)"
            )
        if self.teacher and self.kind != "conf-reg":
            raise ValueError(f"--teacher is used by loss conf-reg only, not {self.kind!r}")
        if self.bias and self.kind not in LOSSES_NEEDING_BIAS:
            raise ValueError(
                f"loss {self.kind!r} uses no bias file: drop --bias, or pick --loss poe, reweight or conf-reg"
            )
        if self.anneal is not None:
            low, high = self.anneal
            if not 0 <= low <= high:
                raise ValueError(f"loss.anneal must be [min, max] with 0 <= min <= max (got {list(self.anneal)})")
            if self.kind not in LOSSES_NEEDING_BIAS:
                raise ValueError(f"loss.anneal anneals bias probabilities; loss {self.kind!r} uses none")
            if self.kind.startswith("learned-mixin"):
                raise ValueError("loss.anneal: learned-mixin learns how much to trust the bias itself (its gate)")
        return self


class TrainCfg(Section):
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    lr: float = Field(5e-5, gt=0)
    batch_size: int = Field(32, ge=1)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping by global norm; 0 disables it")
    seed: int = Field(1, ge=0, le=SEED_MAX)
    save_every: int | None = Field(None, ge=1, description="also save checkpoints/step-N/ every N steps (timing study)")
    checkpoint_every: int | None = Field(
        None,
        ge=0,
        description="save the resumable state (OUT/resume) every N "
        "steps; unset: at every evaluation (imp: every level); 0: never (no "
        "--resume)",
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "no", description="autocast through accelerate (GPU; bf16 also on CPU)"
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainCfg:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        return self


class EvalCfg(Section):
    every: int = Field(1000, ge=1, description="evaluate on the ID dev set every N steps (and at the end)")
    batch_size: int = Field(128, ge=1)
    metric: Literal["acc", "f1", "weighted_f1"] = Field(
        "acc", description="ID dev metric that selects the best checkpoint (QQP: f1 of duplicate, or weighted_f1)"
    )
    ood_during_training: bool = Field(False, description="also evaluate OOD sets at every evaluation")
    sets: list[str] | None = Field(
        None,
        description="evaluate only these of the task's sets (`srnet tasks`); "
        "training commands still select on the first ID set",
    )


STRUCTURED = ("head", "neuron", "head+neuron")


def parse_granularity(text: str) -> tuple[str, tuple[int, int] | None]:
    """`weight`, a structured kind (head, neuron, head+neuron), or an N:M pattern such as `2:4` -> (kind, (N, M))."""
    if text == "weight" or text in STRUCTURED:
        return text, None
    n, sep, m = text.partition(":")
    if sep and n.isdigit() and m.isdigit() and 0 < int(n) < int(m):
        return "n:m", (int(n), int(m))
    raise ValueError(f"mask.granularity {text!r}: use weight, head, neuron, head+neuron or N:M (e.g. 2:4)")


class MaskCfg(Section):
    """Which weights are masked and how sparse the subnetwork is."""

    sparsity: float = Field(0.5, ge=0, lt=1, description="target (final) sparsity of the masked matrices")
    granularity: str = Field(
        "weight",
        description="what a mask removes: single weights (the paper), whole heads and/or FFN neurons "
        "(head, neuron, head+neuron: a compact, faster model), or N of every M input weights (2:4)",
    )
    scope: Literal["layer", "global"] = Field("layer", description="sparsity per matrix (paper) or over all of them")
    include_pooler: bool = Field(True, description="mask the pooler's dense layer (the paper does)")
    include_classifier: bool = Field(False, description="mask the classifier (the paper does in mask training)")
    file: str | None = Field(None, description="retrain: mask file, or a run dir (masks/level-S or masks/best)")
    family: str | None = Field(
        None, description="structure map to use for a model type srnet does not know (`srnet models`); still checked"
    )
    leave_dense: list[str] = Field(
        default_factory=list, description="regexes of linear layers to leave dense that the structure map cannot place"
    )

    @model_validator(mode="after")
    def _granularity(self) -> MaskCfg:
        _, nm = parse_granularity(self.granularity)
        if nm is not None and abs(self.sparsity - (1 - nm[0] / nm[1])) > 1e-9:
            raise ValueError(
                f"an {self.granularity} mask keeps {nm[0]} of every {nm[1]} weights: its sparsity is "
                f"{1 - nm[0] / nm[1]:g}, so pass --sparsity {1 - nm[0] / nm[1]:g}"
            )
        return self

    @property
    def nm(self) -> tuple[int, int] | None:
        return parse_granularity(self.granularity)[1]

    @property
    def structured(self) -> bool:
        return self.granularity in STRUCTURED


class ImpCfg(Section):
    rate: float = Field(0.1, gt=0, lt=1, description="sparsity added per level; levels rate, 2·rate, ... sparsity")
    rewind: str = Field("none", description="none (after fine-tuning), pretrained (lottery ticket), or a step N")
    save_models: bool = Field(False, description="also save each level's pruned model under models/level-S/")
    evaluate_levels: list[float] | None = Field(
        None, description="evaluate only these levels (masks of every level are saved); unset: every level"
    )

    @model_validator(mode="after")
    def _rewind_value(self) -> ImpCfg:
        if self.rewind not in ("none", "pretrained") and not (self.rewind.isdigit() and int(self.rewind) >= 1):
            raise ValueError(f"rewind must be none, pretrained or a step number >= 1 (got {self.rewind!r})")
        return self


class SearchCfg(Section):
    """Mask training: learnable scores over frozen weights."""

    init: Literal["hard", "soft"] = Field("hard", description="hard: scores 0 / 2φ by magnitude; soft: scores |W|")
    initial_sparsity: float | None = Field(None, ge=0, lt=1, description="start of the cubic schedule; unset: fixed")
    schedule_end: float = Field(1.0, gt=0, le=1, description="fraction of training at which the final sparsity holds")
    recalibrate_every: int | None = Field(
        None,
        ge=1,
        description="reset thresholds to the top-k every N steps; unset: every evaluation (the paper); 1: every step",
    )
    select_after: float = Field(
        0.7,
        ge=0,
        lt=1,
        description="select the best mask only after this fraction of "
        "training (0.7 from a fine-tuned model, 0 from a pre-trained one)",
    )
    train_classifier: bool = Field(False, description="also train the classifier's weights (the paper: frozen)")
    train_with: list[Literal["hans", "paws", "symmetric"]] = Field(
        default_factory=list,
        description="OOD training sets added to the data (upper-bound study; CE only, as the paper)",
    )
    ood_copies: int = Field(1, ge=1, le=100, description="how many copies of each train_with set")


def check_sets(task: str, sets: list[str] | None) -> None:
    if sets is None:
        return
    known = (*TASKS[task].id_splits, *TASKS[task].ood_sets)
    unknown = [s for s in sets if s not in known]
    if unknown or not sets:
        raise ValueError(
            f"eval.sets: {unknown[0] if unknown else 'an empty list'!r} is not a set of {task}; "
            f"choose from {', '.join(known)}"
        )


def check_metric(task: str, metric: str) -> None:
    if metric not in TASKS[task].selection_metrics:
        raise ValueError(
            f"eval.metric {metric!r} does not exist for {task}; use one of {', '.join(TASKS[task].selection_metrics)}"
        )


class FinetunePreset(Section):
    command: Literal["finetune"] = "finetune"
    description: str = ""
    task: TaskName = "mnli"
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    loss: LossCfg = LossCfg()
    train: TrainCfg = TrainCfg()
    eval: EvalCfg = EvalCfg()

    @model_validator(mode="after")
    def _metric_of_task(self) -> FinetunePreset:
        check_metric(self.task, self.eval.metric)
        check_sets(self.task, self.eval.sets)
        return self


class EvaluatePreset(Section):
    command: Literal["evaluate"] = "evaluate"
    description: str = ""
    task: TaskName = "mnli"
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    eval: EvalCfg = EvalCfg()
    mask_file: str | None = Field(None, description="evaluate the model with this mask applied")
    use_mask_weights: bool = Field(
        False,
        description="a torch-pruned mask file (the original IMP's "
        "pytorch_model.bin): use its trained weight_orig, not the model's",
    )
    split: Literal["eval", "train"] = Field("eval", description="eval: ID dev + OOD sets; train: the training set")
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "no",
        description="autocast the forward passes (bf16 also on CPUs: native with AMX or AVX512-BF16)",
    )
    save_probs: str | None = Field(
        None, description="with split=train: write class probabilities by example id (the conf-reg teacher file)"
    )
    file: str | None = Field(None, description="evaluate this one file instead of the task's sets (with layout)")
    layout: LayoutName | None = Field(None, description="the upstream format of `file`")

    @model_validator(mode="after")
    def _probs_of_train(self) -> EvaluatePreset:
        if self.save_probs and self.split != "train":
            raise ValueError("--save-probs writes teacher probabilities of the training set: add --split train")
        check_sets(self.task, self.eval.sets)
        if (self.file is None) != (self.layout is None):
            raise ValueError("--file needs --layout (mnli, hans, qqp, paws, fever, fever-sym), and --layout a --file")
        if self.layout is not None and LAYOUTS[self.layout] != self.task:
            raise ValueError(
                f"--layout {self.layout} is a {LAYOUTS[self.layout]} file, not {self.task}: pass "
                f"--task {LAYOUTS[self.layout]}"
            )
        if self.file is not None and (self.split == "train" or self.eval.sets):
            raise ValueError("--file evaluates one file: drop --split train / --sets")
        return self


class RetrainMaskCfg(MaskCfg):
    sparsity: float | None = Field(None, ge=0, lt=1, description="picks masks/level-S of an imp run directory")  # type: ignore[assignment]
    compact: bool = Field(
        False,
        description="cut a structured mask's heads and neurons out and retrain the compact model (the same "
        "function as the masked one, fewer FLOPs); refused for a mask that is not whole heads and neurons",
    )


class RetrainPreset(FinetunePreset):
    command: Literal["retrain"] = "retrain"  # type: ignore[assignment]
    mask: RetrainMaskCfg = RetrainMaskCfg()

    @model_validator(mode="after")
    def _needs_mask(self) -> RetrainPreset:
        if not self.mask.file:
            raise ValueError("retrain needs a mask: pass --mask FILE|RUN_DIR or set mask.file")
        return self


class ImpPreset(FinetunePreset):
    command: Literal["imp"] = "imp"  # type: ignore[assignment]
    mask: MaskCfg = MaskCfg(sparsity=0.9)
    imp: ImpCfg = ImpCfg()

    @model_validator(mode="after")
    def _levels_land_on_the_sparsity(self) -> ImpPreset:
        imp_level_count(self.imp.rate, self.mask.sparsity)
        if self.mask.nm is not None and self.imp.rate != self.mask.sparsity:
            raise ValueError(
                f"an {self.mask.granularity} mask has one sparsity ({self.mask.sparsity:g}), so IMP prunes to it in "
                f"one level: pass --set imp.rate={self.mask.sparsity:g}"
            )
        return self


class MaskTrainPreset(FinetunePreset):
    command: Literal["mask-train"] = "mask-train"  # type: ignore[assignment]
    mask: MaskCfg = MaskCfg(include_classifier=True)
    search: SearchCfg = SearchCfg()

    @model_validator(mode="after")
    def _ood_with_ce(self) -> MaskTrainPreset:
        initial = self.search.initial_sparsity
        if initial is not None and initial > self.mask.sparsity:
            raise ValueError(
                f"search.initial_sparsity {initial} is above the final sparsity {self.mask.sparsity}: "
                "the cubic schedule only prunes more over time"
            )
        if self.mask.nm is not None and initial is not None and initial != self.mask.sparsity:
            raise ValueError(
                f"an {self.mask.granularity} mask has one sparsity ({self.mask.sparsity:g}): no gradual schedule "
                "(leave search.initial_sparsity unset)"
            )
        if self.search.train_with and self.loss.kind != "ce":
            raise ValueError("search.train_with (OOD training data) is used with --loss ce only, as in the paper")
        allowed = list(TASKS[self.task].ood_train)
        wrong = [name for name in self.search.train_with if name not in allowed]
        if wrong:
            raise ValueError(
                f"--train-with {wrong[0]} is not OOD data of {self.task}; use --train-with {' or '.join(allowed)}"
            )
        return self


class LearnerCfg(Section):
    """A learned bias model (Utama et al. 2020: shallow; Sanh et al. 2021: weak learner)."""

    subset: int | None = Field(
        None, ge=1, description="shallow: train on a random subset of N training examples (with folds: of the other "
        "folds); unset: subset_fraction of them, at least subset_floor",
    )  # fmt: skip
    subset_fraction: float = Field(
        0.005, gt=0, le=1, description="shallow: the subset as a share of the training data (Utama et al.: 2,000 of "
        "MNLI's 393k, 0.5%)",
    )  # fmt: skip
    subset_floor: int = Field(200, ge=1, description="shallow: the smallest subset subset_fraction may give")
    folds: int | None = Field(
        None, ge=1, description="k-fold: each example is predicted by the model of its fold, which did not see it; "
        "unset: 2 for shallow (no example predicted by a model that trained on it), none for weak-learner; "
        "1: one model predicts every example, its own training examples in-sample",
    )  # fmt: skip
    layers: int | None = Field(None, ge=1, description="keep only the model's first N transformer layers")


class BiasModelPreset(FinetunePreset):
    """A bias model learnt from the data itself: the task's model fine-tuned with CE on a subset (`shallow`) or a
    truncated model on all of it (`weak-learner`); its log-probs on the training set become bias.json."""

    command: Literal["bias-model"] = "bias-model"  # type: ignore[assignment]
    kind: Literal["shallow", "weak-learner"] = "shallow"
    learner: LearnerCfg = LearnerCfg()

    @model_validator(mode="after")
    def _ce_learner(self) -> BiasModelPreset:
        if self.loss.kind != "ce":
            raise ValueError("a bias model is trained with loss ce (it is the shortcut learner itself)")
        return self


PRESETS: dict[str, type[Section]] = {
    "bias-model": BiasModelPreset,
    "finetune": FinetunePreset,
    "evaluate": EvaluatePreset,
    "imp": ImpPreset,
    "mask-train": MaskTrainPreset,
    "retrain": RetrainPreset,
}
