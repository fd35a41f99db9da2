"""Which preset keys take no effect where: every key is read by the code path that runs, or declared here with the
reason it has none in that preset, in which case a value other than the preset class's default is refused, before
anything runs (nothing silent). `tests/test_every_option.py` checks that the declaration is complete: on each code
path of each command, a real run reads every key that is not declared here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from srnet_cli.config.schema import Section


# keys that describe a preset rather than configure a run
INFORMATIONAL = ("command", "description")

Rule = Callable[[Any], str | None]  # the preset -> why the key has no effect there, or None


def _command(*commands: str, why: str) -> Rule:
    return lambda p: why if p.command in commands else None


def _unless(condition: Callable[[Any], bool], why: str) -> Rule:
    return lambda p: None if condition(p) else why


def _subset_share(p: Any) -> str | None:
    if p.kind != "shallow":
        return "--kind weak-learner trains on all the data"
    return "--subset sets the count" if p.learner.subset is not None else None


RULES: dict[str, Rule] = {
    "train.epochs": _unless(lambda p: p.train.max_steps is None, "train.max_steps decides the run length"),
    "train.save_every": _command(
        "imp", "mask-train", why="imp and mask-train save masks, not checkpoints/step-N (finetune, retrain do)"
    ),
    "loss.allow_pickle": _unless(
        lambda p: str(p.loss.bias or "").endswith(".pkl"), "it allows a pickled .pkl bias file, and --bias is none"
    ),
    "eval.every": _command("imp", "evaluate", why="imp evaluates at the end of each level; evaluate once"),
    "eval.ood_during_training": _command(
        "imp", "evaluate", why="imp evaluates every set at the end of each level; evaluate evaluates every set"
    ),
    "eval.metric": _command("evaluate", why="evaluate selects no checkpoint: it reports every metric"),
    "data.train_limit": _command("evaluate", why="evaluate trains nothing"),
    "data.train_ids": _command("evaluate", why="evaluate trains nothing"),
    "data.require_ood": lambda p: (
        "--split train evaluates the training set only" if getattr(p, "split", "") == "train" else None
    ),
    "use_mask_weights": _unless(lambda p: p.mask_file is not None, "it applies to a mask file (--mask)"),
    "mask.file": _command("imp", "mask-train", why="imp and mask-train find a mask; mask.file is what retrain reads"),
    "mask.scope": lambda p: (
        "retrain applies the mask file as it is"
        if p.command == "retrain"
        else "an N:M mask keeps N of every M weights of each row"
        if p.mask.nm is not None
        else None
    ),
    "mask.include_pooler": lambda p: (
        "retrain applies the mask file as it is"
        if p.command == "retrain"
        else "heads and neurons are encoder units: the pooler stays dense"
        if p.mask.structured
        else None
    ),
    "mask.include_classifier": lambda p: (
        "heads and neurons are encoder units: the classifier stays dense"
        if p.command in ("imp", "mask-train") and p.mask.structured
        else None
    ),
    "search.schedule_end": _unless(
        lambda p: p.search.initial_sparsity is not None, "it shapes the gradual schedule (--initial-sparsity)"
    ),
    "search.ood_copies": _unless(lambda p: bool(p.search.train_with), "it copies the --train-with sets"),
    "loss.entropy_weight": _unless(lambda p: p.loss.kind == "learned-mixin-h", "it weighs learned-mixin-h's penalty"),
    "loss.gamma": _unless(lambda p: p.loss.kind == "focal", "it is the focal loss's exponent"),
    "learner.subset": _unless(lambda p: p.kind == "shallow", "--kind weak-learner trains on all the data"),
    "learner.subset_fraction": lambda p: _subset_share(p),
    "learner.subset_floor": lambda p: _subset_share(p),
    "learner.layers": _unless(lambda p: p.kind == "weak-learner", "--kind shallow keeps every layer"),
}
FLAGS = {
    "learner.subset": "--subset",
    "learner.layers": "--layers",
    "train.epochs": "--epochs",
    "use_mask_weights": "--use-mask-weights",
    "loss.allow_pickle": "--allow-pickle",
}


def no_effect(preset: Section, key: str) -> str | None:
    """Why `key` has no effect in `preset`, or None when it takes effect (or is not declared)."""
    rule = RULES.get(key)
    return rule(preset) if rule is not None else None


def _value(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj


def _default(preset: Section, dotted: str) -> object:
    head, _, rest = dotted.partition(".")
    field = type(preset).model_fields.get(head)
    if field is None:
        return None
    default = field.get_default(call_default_factory=True)
    return _value(default, rest) if rest else default


def _section_default(preset: Section, dotted: str) -> object:
    """The key's default in its section's own class (a preset file's [mask] table starts from MaskCfg's defaults,
    which may differ from the command's: mask-train's classifier is masked by default, MaskCfg's is not)."""
    head, _, rest = dotted.partition(".")
    section = getattr(preset, head, None)
    field = type(section).model_fields.get(rest) if isinstance(section, BaseModel) and rest else None
    return field.get_default(call_default_factory=True) if field is not None else _default(preset, dotted)


def ineffective_settings(preset: Section) -> list[str]:
    """One line per key set to a non-default value where it has no effect."""
    lines = []
    for key in RULES:
        head = key.partition(".")[0]
        if head not in type(preset).model_fields:
            continue
        value = _value(preset, key)
        if value in (_default(preset, key), _section_default(preset, key)):
            continue
        why = no_effect(preset, key)
        if why:
            flag = f" ({FLAGS[key]})" if key in FLAGS else ""
            lines.append(f"{key}{flag} = {value!r} has no effect here: {why}")
    return lines
