"""Multi-seed runs: `--seeds 1,2,3` runs a command once per seed into OUT/seed-N and summarises mean ± std."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srnet_cli.config.schema import SEED_MAX, Section
from srnet_cli.engine.evaluation.metrics import Metrics
from srnet_cli.errors import UsageError
from srnet_cli.recipes.results import RunResults

SEED_PATHS = (("model", "name_or_path"), ("loss", "bias"), ("loss", "teacher"), ("mask", "file"))


def parse_seeds(text: str) -> list[int]:
    """Every seed is checked before the first run starts: a bad last seed must not cost the earlier runs' time."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--seeds {text!r} is not a list of integers", "e.g. --seeds 1,2,3") from None
    if not seeds:
        raise UsageError(f"--seeds {text!r} lists no seed", "e.g. --seeds 1,2,3, or --seed N for one run")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds {text!r} needs distinct non-negative seeds", "e.g. --seeds 1,2,3")
    if max(seeds) > SEED_MAX:
        raise UsageError(f"--seeds: seed {max(seeds)} is above {SEED_MAX} (seeds are 32-bit)", "e.g. --seeds 1,2,3")
    return seeds


def check_seed_dirs(out: Path, seeds: list[int], overwrite: bool, resume: bool = False) -> None:
    """OUT/seed-N must each be usable and OUT/summary.json new (or --overwrite), checked before any run starts.
    With --resume each seed's run checks its own directory (and one not started yet starts)."""
    from srnet_cli.engine.runs.files import check_file_target, check_out_dir
    from srnet_cli.engine.runs.lock import lock_run_dir
    from srnet_cli.errors import RunDirError

    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory", "choose a directory path for --out")
    lock_run_dir(out)  # the whole multi-seed job owns OUT (and each seed's run its OUT/seed-N)
    if (out / "results.json").is_file():
        raise RunDirError(
            f"--out {out} holds a single run already; seed runs would nest inside it", "choose a new --out for --seeds"
        )
    if resume:
        return
    for seed in seeds:
        check_out_dir(out / f"seed-{seed}", overwrite)
    check_file_target(out / "summary.json", overwrite)


def with_seed(preset: Section, seed: int) -> Section:
    """The preset with train.seed = seed and `{seed}` in its input paths replaced (per-seed models and teachers)."""
    update: dict[str, Any] = {"train": preset.train.model_copy(update={"seed": seed})}  # type: ignore[attr-defined]
    for section, key in SEED_PATHS:
        part = getattr(preset, section, None)
        value = getattr(part, key, None) if part is not None else None
        if part is not None and isinstance(value, str) and "{seed}" in value:
            update[section] = update.get(section, part).model_copy(update={key: value.replace("{seed}", str(seed))})
    return preset.model_copy(update=update)


def _numbers(metrics: Metrics) -> dict[str, float]:
    """The metrics.jsonl flattening (`hans.acc`), without the set sizes and flags: what a seed average means."""
    from srnet_cli.dicts import flat_metrics

    return {
        key: float(value)
        for key, value in flat_metrics(metrics).items()
        if not key.endswith(".n") and not isinstance(value, bool)
    }


def run_numbers(run: RunResults) -> dict[str, float]:
    """Final metrics of a run; for imp, every level's (`0.50/hans.acc`)."""
    if run.command == "imp":
        return {
            f"{level.level:.2f}/{key}": value for level in run.levels for key, value in _numbers(level.metrics).items()
        }
    return _numbers(run.metrics)


def seed_summary(runs: list[RunResults], out: Path) -> dict[str, Any]:
    """Mean and sample standard deviation of every final metric over the seeds; written to OUT/summary.json."""
    from srnet_cli.engine.evaluation.metrics import mean_std
    from srnet_cli.engine.runs.files import write_json

    per_run = [run_numbers(run) for run in runs]
    keys = [k for k in per_run[0] if all(k in r for r in per_run)]
    stats = {}
    for key in keys:
        values = [r[key] for r in per_run]
        stats[key] = {**mean_std(values), "values": values}
    summary = {
        "command": runs[0].command,
        "task": runs[0].task,
        "seeds": [r.seed for r in runs],
        "out": str(out),
        "metrics": stats,
        "runs": [r.out for r in runs],
    }
    write_json(out / "summary.json", summary)
    return summary
