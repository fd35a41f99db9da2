"""Resolve, read, override and validate presets. Precedence, lowest first:
field defaults < preset file < `--set dotted.key=VALUE` < named flags (`--task`, `--loss`, `--model`, ...).

Imports nothing heavy: `--dry-run` and preset errors never load torch.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from srnet_cli.config.effect import ineffective_settings
from srnet_cli.config.schema import PRESETS, Section
from srnet_cli.errors import PresetError, UsageError
from srnet_cli.parsing import NestingError, toml_loads

REPO_PRESETS = Path(__file__).resolve().parents[2] / "presets"
# Keys that exclude each other: an override of one drops the other from the preset file (TOML has no null).
EXCLUSIVE = {
    "train.warmup_steps": "train.warmup_ratio",
    "train.warmup_ratio": "train.warmup_steps",
    "train.epochs": "train.max_steps",
    "train.max_steps": "train.epochs",
}  # --epochs makes the epochs decide: the preset's max_steps goes; --max-steps drops the preset's epochs
RUN_LENGTH = ("train.max_steps", "train.epochs")
WARMUP = ("train.warmup_steps", "train.warmup_ratio")
RESCALED_WARMUP = 0.1  # the paper's warm-ups are ~10% of their runs (3600 of 36.8k MNLI steps)


def presets_root() -> Path:
    """Presets ship inside the wheel as `srnet_cli/presets`; an editable checkout uses the top-level `presets/`."""
    packaged = Path(str(resources.files("srnet_cli"))) / "presets"
    return packaged if packaged.is_dir() else REPO_PRESETS


def list_presets() -> list[tuple[str, str, Path]]:
    """(command, name, path) of every shipped preset."""
    root = presets_root()
    return [(p.parent.name, p.stem, p) for p in sorted(root.glob("*/*.toml"))]


def default_preset_name(command: str, task: str, loss: str | None) -> str:
    return task if command == "evaluate" else f"{loss}-{task}"


def find_preset(command: str, name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.suffix == ".toml" or "/" in name_or_path:
        raise UsageError(f"preset file not found: {name_or_path}", "check the path, or see `srnet presets list`")
    shipped = presets_root() / command / f"{name_or_path}.toml"
    if not shipped.is_file():
        names = ", ".join(n for c, n, _ in list_presets() if c == command) or "none"
        raise UsageError(f"no shipped {command} preset named {name_or_path!r}", f"shipped {command} presets: {names}")
    return shipped


def parse_value(text: str, key: str = "") -> Any:
    """A TOML literal (`5e-5`, `true`, `[1, 2]`, `"x"`); anything else is taken as a plain string."""
    try:
        return toml_loads(f"v = {text}")["v"]
    except NestingError as exc:
        raise UsageError(f"--set {key}: the value is {exc}", "pass a number, string, boolean or flat list") from None
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not all(part.strip() for part in key.split(".")):
            raise UsageError(f"--set {item!r} is not of the form dotted.key=VALUE", "e.g. --set train.lr=3e-5")
        pairs[key.strip()] = parse_value(value.strip(), key.strip())
    return pairs


def _deep_set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = dotted[: dotted.index(part) + len(part)]
            raise PresetError(
                [f"{dotted}: {part!r} is a value, not a section"], f"set the value itself, e.g. --set {section}=VALUE"
            )
        node = child
    node[leaf] = value


def _deep_pop(raw: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.get(part, {})
        if not isinstance(node, dict):
            return
    node.pop(leaf, None)


def read_preset_file(path: Path) -> dict[str, Any]:
    try:
        return toml_loads(path.read_text(encoding="utf-8"))
    except NestingError as exc:
        raise PresetError([f"{path}: {exc}"], "a preset holds flat TOML tables (docs/reference.md)") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PresetError([f"{path}: invalid TOML: {exc}"], "fix the syntax (docs/reference.md, presets)") from exc
    except OSError as exc:
        raise UsageError(f"cannot read preset {path}: {exc.strerror}", "check the path and its permissions") from exc


TYPE_ERRORS = ("int_type", "float_type", "bool_type", "string_type", "int_from_float", "list_type", "tuple_type")


def format_validation_error(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "preset"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("literal_error", "enum", *TYPE_ERRORS) and "input" in err:
            msg += f" (got {err['input']!r})"
        lines.append(f"{loc}: {msg}")
    return lines


def validate(command: str, raw: dict[str, Any]) -> Section:
    """The preset, type-checked, with every key set to a non-default value taking effect (config/effect.py)."""
    try:
        preset = PRESETS[command].model_validate(raw)
    except ValidationError as exc:
        raise PresetError(format_validation_error(exc), "fix these keys (see `srnet presets show NAME`)") from exc
    ineffective = ineffective_settings(preset)
    if ineffective:
        raise PresetError(ineffective, "drop these settings (srnet refuses options that would be silently ignored)")
    return preset


def load_preset(
    command: str, preset: str | None, sets: list[str], flags: dict[str, Any]
) -> tuple[Section, Path | None, list[str]]:
    """Resolve and validate. Returns (preset, file it came from, notes about overridden values)."""
    path = find_preset(command, preset) if preset else None
    raw = read_preset_file(path) if path else {"command": command}
    notes: list[str] = []
    set_values = parse_sets(sets)
    overrides = set(set_values) | {k for k, v in flags.items() if v is not None}
    for dotted in overrides:
        if dotted in EXCLUSIVE and EXCLUSIVE[dotted] not in overrides:
            _deep_pop(raw, EXCLUSIVE[dotted])
    _rescale_warmup(raw, overrides, notes)
    for dotted, value in set_values.items():
        _deep_set(raw, dotted, value)
    for dotted, value in flags.items():
        if value is None:
            continue
        if dotted in set_values and set_values[dotted] != value:
            notes.append(f"{dotted}: the named flag ({value!r}) overrides --set ({set_values[dotted]!r})")
        _deep_set(raw, dotted, value)
    return validate(command, raw), path, notes


def _rescale_warmup(raw: dict[str, Any], overrides: set[str], notes: list[str]) -> None:
    """A preset's warm-up in steps is sized for the preset's own run length: when the run length is overridden
    (--max-steps, --epochs, --set) and the warm-up is not, it becomes 10% of the new run, and the user is told."""
    train = raw.get("train")
    if not isinstance(train, dict):
        return
    steps = train.get("warmup_steps")
    if not steps or not overrides & set(RUN_LENGTH) or overrides & set(WARMUP):
        return
    train.pop("warmup_steps")
    train["warmup_ratio"] = RESCALED_WARMUP
    notes.append(
        f"the preset's warm-up of {steps} steps is sized for its own run length; with another run length "
        f"it is {RESCALED_WARMUP:.0%} of the run (train.warmup_ratio = {RESCALED_WARMUP}); pass --warmup "
        "to choose"
    )


def dump_toml(preset: Section) -> str:
    """The resolved preset as TOML (unset optional keys are omitted: TOML has no null)."""
    return tomli_w.dumps(preset.model_dump(mode="json", exclude_none=True))
