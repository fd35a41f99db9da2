"""The demo's stages: each an ordinary srnet run (the shipped preset, shortened), and the jobs that run them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srnet_cli.config.loader import find_preset, read_preset_file, validate
from srnet_cli.config.schema import BiasModelPreset, FinetunePreset
from srnet_cli.engine.runs.context import Reporter, RunContext
from srnet_cli.recipes import data_synth, finetune, imp, mask_train
from srnet_cli.recipes.demo.spec import DEMO_TASKS, DemoSpec
from srnet_cli.recipes.demo_pool import Job
from srnet_cli.recipes.report.rendering import LOSS_DISPLAY
from srnet_cli.recipes.results import RunResults

Overrides = dict[str, dict[str, Any]]  # preset section -> keys a stage sets


@dataclass(frozen=True)
class Stage:
    """One srnet run of the study: a shipped preset at demo scale, started from the pre-trained or the CE model."""

    name: str  # its run directory under OUT
    section: str
    command: str  # finetune | imp | mask-train | retrain
    preset: str  # the shipped preset's name without the task, e.g. "lt-poe"
    label: str  # the method, as the table names it
    start: str = "pretrained"  # "pretrained" or "finetune-ce" (the CE model's directory)
    sparsity: float | None = None
    overrides: Overrides = field(default_factory=dict)
    reported: bool = True  # the lottery-ticket search itself is not a row: its retrained mask is
    steps_factor: float = 1  # times the command's demo budget (steps or search_steps), so --steps scales it too


FULL = "full models"
A = "(a) subnetworks of the fine-tuned model"
B = "(b) subnetworks fine-tuned in isolation"
C = "(c) subnetworks of the pre-trained model, no fine-tuning"
OOD = "upper bound: mask training with OOD data"
GRADUAL = "gradual sparsity"
STRUCTURED = "structured SRNet: whole heads and FFN neurons (a compact model)"


def stages(spec: DemoSpec) -> list[Stage]:
    """Every run of the study, in order: full models, paradigms (a)-(c), the OOD-data upper bound, gradual."""
    full = [
        Stage("finetune-ce", FULL, "finetune", "ce", "CE fine-tuned"),
        Stage("finetune-poe", FULL, "finetune", "poe", "PoE fine-tuned", steps_factor=spec.poe_factor),
    ]
    if spec.dense_only:
        return full
    return full + _stages_a(spec) + _stages_b(spec) + _stages_rest(spec) + structured_stages(spec)


def structured_stages(spec: DemoSpec) -> list[Stage]:
    """Structured SRNet at the first sparsity: PoE mask training over whole heads and neurons of the CE model, then
    the mask retrained from the CE weights with PoE (removing half the heads and neurons at once costs more ID
    accuracy than frozen-weight mask training can win back in the demo's budget) as a compact model: the heads and
    neurons are cut out before retraining, so the retraining itself is faster."""
    s = spec.sparsities[0]
    search = f"s-mask-poe-{_level(s)}"
    label = "structured PoE (heads + neurons), retrained PoE"
    return [
        Stage(search, STRUCTURED, "mask-train", "structured-poe", "structured mask training PoE (search)",
              "finetune-ce", s, reported=False),
        Stage(f"s-retrain-poe-{_level(s)}", STRUCTURED, "retrain", "poe", label, "finetune-ce", s,
              overrides={"mask": {"file": search, "compact": True}}, steps_factor=spec.structured_retrain_factor),
    ]  # fmt: skip


LOSSES = ("ce", "poe")


def _level(sparsity: float) -> str:
    return f"{100 * sparsity:.0f}"


def _stages_a(spec: DemoSpec) -> list[Stage]:
    """Paradigm (a): IMP and mask training with CE and PoE on the CE model."""
    imp_cfg: Overrides = {
        "imp": {"rate": 0.1, "evaluate_levels": list(spec.sparsities)},
        "mask": {"sparsity": spec.sparsities[-1]},
    }
    out = [Stage(f"a-imp-{x}", A, "imp", x, f"IMP {LOSS_DISPLAY[x]}", "finetune-ce", overrides=imp_cfg) for x in LOSSES]
    for loss in LOSSES:
        name = f"mask training {LOSS_DISPLAY[loss]}"
        out += [
            Stage(f"a-mask-{loss}-{_level(s)}", A, "mask-train", loss, name, "finetune-ce", s) for s in spec.sparsities
        ]
    return out


def _stages_b(spec: DemoSpec) -> list[Stage]:
    """Paradigm (b): the lottery-ticket mask and the PoE mask of (a), retrained from the pre-trained weights."""
    first = spec.sparsities[0]
    lt_search: Overrides = {"imp": {"rate": 0.1, "evaluate_levels": []}, "mask": {"sparsity": first}}
    # a PoE ticket retrained at the demo's lr 5e-5 leaves its anti-bias stage late; at 1e-4 it learns (at 2e-4 one seed
    # stayed there: the user guide, section 3)
    lt_mask: Overrides = {"mask": {"file": "b-lt-imp-poe", "sparsity": first}, "train": {"lr": spec.lt_retrain_lr}}
    out = [
        Stage(
            "b-lt-imp-poe", B, "imp", "lt-poe", "lottery-ticket IMP PoE (search)", overrides=lt_search, reported=False
        ),
        Stage(
            f"b-retrain-lt-poe-{_level(first)}",
            B,
            "retrain",
            "poe",
            "lottery-ticket IMP PoE, retrained PoE",
            sparsity=first,
            overrides=lt_mask,
            steps_factor=spec.lt_retrain_factor,
        ),
    ]
    a_mask = {"mask": {"file": f"a-mask-poe-{_level(first)}"}}
    for loss in LOSSES:
        out.append(
            Stage(
                f"b-retrain-mask-poe-{_level(first)}-{loss}",
                B,
                "retrain",
                loss,
                f"PoE mask (a), retrained {LOSS_DISPLAY[loss]}",
                sparsity=first,
                overrides=a_mask,
                steps_factor=spec.mask_retrain_factor,
            )
        )
    return out


# The paper's OOD-data search runs 3 epochs over MNLI + the HANS training set: each OOD pair is seen 3 times.
OOD_VIEWS = 3
OOD_COPIES_CAP = 100  # the most copies a search takes (search.ood_copies), for runs too short to reach 3 views


def ood_copies(spec: DemoSpec) -> int:
    """Copies of the OOD training set that make a `search_steps`-step search see each OOD pair OOD_VIEWS times:
    a pair's views are c·S·B / (T + c·n) for c copies of n OOD pairs beside T task pairs, S steps of batch B,
    so c = OOD_VIEWS·T / (S·B − OOD_VIEWS·n); where S·B ≤ OOD_VIEWS·n no number of copies gets there: the cap."""
    n = _synth_spec(spec).ood_train_size
    seen = spec.search_steps * spec.batch_size
    room = seen - OOD_VIEWS * n
    if room <= 0:
        return OOD_COPIES_CAP
    return max(1, min(OOD_COPIES_CAP, round(OOD_VIEWS * spec.train_size / room)))


def _stages_rest(spec: DemoSpec) -> list[Stage]:
    """Paradigm (c), the OOD-data upper bound and gradual sparsity."""
    first, last = spec.sparsities[0], spec.sparsities[-1]
    copies: Overrides = {"search": {"ood_copies": ood_copies(spec)}}
    gradual: Overrides = {"search": {"initial_sparsity": first}}
    return [
        Stage(
            f"c-mask-pt-poe-{_level(first)}",
            C,
            "mask-train",
            "pt-poe",
            "mask training PoE on pre-trained",
            sparsity=first,
            steps_factor=spec.pt_search_factor,
        ),
        Stage(
            f"ood-mask-ce-{_level(first)}",
            OOD,
            "mask-train",
            "ood-ce",
            "mask training CE + OOD train data",
            "finetune-ce",
            first,
            copies,
        ),
        Stage(
            f"gradual-mask-poe-{_level(first)}-{_level(last)}",
            GRADUAL,
            "mask-train",
            "gradual-poe",
            f"mask training PoE, gradual {_level(first)}%->{_level(last)}%",
            "finetune-ce",
            last,
            gradual,
        ),
    ]


def _preset(stage: Stage, spec: DemoSpec, out: Path, data: Path, bias: Path) -> FinetunePreset:
    """The shipped preset at demo scale: its loss, batch, clipping and search settings; fewer steps, 10% warm-up."""
    task = DEMO_TASKS[spec.task].task
    raw = read_preset_file(find_preset(stage.command, f"{stage.preset}-{task}"))
    model = spec.model if stage.start == "pretrained" else str(out / stage.start / "model")
    raw["model"]["name_or_path"] = model
    raw["data"] = {"dir": str(data)}
    raw["train"].pop("warmup_steps", None)
    raw["train"].pop("epochs", None)
    # no resumable state: the demo is not resumed, and each state write costs a second or more
    raw["train"].update(seed=spec.seed, lr=spec.lr, warmup_ratio=0.1, batch_size=spec.batch_size, checkpoint_every=0)
    raw["train"]["mixed_precision"] = spec.mixed_precision
    if raw["loss"]["kind"] != "ce":
        raw["loss"]["bias"] = str(bias)
    steps = spec.steps
    if stage.command == "mask-train":
        steps = spec.search_steps
        raw["train"]["lr"] = spec.mask_lr
        raw["search"]["init"] = "soft"  # measured better than hard at this scale (docs/reference.md, "Subnetworks")
        raw["mask"]["sparsity"] = stage.sparsity
    elif stage.command == "imp":
        # the lottery-ticket search only ranks pre-trained weights between rewinds: its mask is retrained after
        steps = spec.imp_steps if stage.start != "pretrained" else max(10, spec.imp_steps // 2)
        raw["train"]["warmup_ratio"] = 0.0  # IMP restarts at peak lr every level, as the shipped presets
    steps = max(1, round(steps * stage.steps_factor))
    raw["train"]["max_steps"] = steps
    # mask training selects from 70% of training: evaluate at 75% and 100%; the others at 1/3, 2/3 and the end
    # (imp evaluates at the end of each level)
    raw["eval"]["batch_size"] = 256
    if stage.command != "imp":
        raw["eval"]["every"] = max(1, steps // 4 if stage.command == "mask-train" else -(-steps // 3))
    for section, values in stage.overrides.items():
        raw.setdefault(section, {}).update(values)
    if stage.command == "retrain":
        raw["mask"]["file"] = str(out / raw["mask"]["file"])
    preset = validate(stage.command, raw)
    assert isinstance(preset, FinetunePreset)  # every stage is a training command
    return preset


def _bias_preset(spec: DemoSpec, kind: str, data: Path) -> BiasModelPreset:
    """The shipped learned-bias preset at demo scale (the shallow model's subset follows the data: its fraction,
    with its floor), the demo's lr, batch and precision."""
    raw = read_preset_file(find_preset("bias-model", f"{kind}-{DEMO_TASKS[spec.task].task}"))
    raw["model"]["name_or_path"] = spec.model
    raw["data"] = {"dir": str(data)}
    raw["train"].update(
        seed=spec.seed, lr=spec.lr, batch_size=spec.batch_size, checkpoint_every=0, mixed_precision=spec.mixed_precision
    )
    raw["eval"].update(every=10**6, batch_size=256)  # evaluated once, at the end
    preset = validate("bias-model", raw)
    assert isinstance(preset, BiasModelPreset)
    return preset


RECIPES: dict[str, Callable[..., RunResults]] = {
    "finetune": finetune.run,
    "retrain": finetune.run,
    "mask-train": mask_train.run,
    "imp": imp.run,
}


def _job(stage: Stage, index: int, total: int, spec: DemoSpec, out: Path, data: Path, bias: Path) -> Job:
    """The stage as a job: its preset (validated now, before any stage runs) and the stages whose outputs it reads."""
    preset = _preset(stage, spec, out, data, bias)
    needs = [stage.start] if stage.start != "pretrained" else []
    needs += [stage.overrides["mask"]["file"]] if "file" in stage.overrides.get("mask", {}) else []
    at = f" at {100 * stage.sparsity:.0f}%" if stage.sparsity is not None else ""
    heading = f"{index}/{total} {stage.section}: {stage.label}{at}"
    return Job(stage.name, heading, stage.command, preset, out / stage.name, tuple(needs), preset.train.max_steps or 0)


def run_stage(job: Job, device: str, reporter: Reporter) -> RunResults:
    return RECIPES[job.command](job.preset, RunContext(job.out_dir, device, reporter))


def _synth_spec(spec: DemoSpec) -> data_synth.Spec:
    challenge = spec.hans_per_subcase * (1 if spec.task == "nli" else 8)
    return data_synth.make_spec(spec.task, spec.train_size, spec.dev_size, challenge, spec.seed)
