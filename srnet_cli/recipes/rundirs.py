"""A training run's directory: created only after every check passed (or repaired on --resume), checked against
the command that resumes it, and closed with results.json."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from srnet_cli.config.loader import dump_toml
from srnet_cli.config.schema import FinetunePreset
from srnet_cli.dicts import flatten
from srnet_cli.engine.runs import resume
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import barrier, is_main
from srnet_cli.engine.runs.files import (
    environment,
    prepare_out_dir,
    recover_dir,
    truncate_lines,
    write_json,
    write_text_atomic,
)
from srnet_cli.engine.runs.lock import MARKER, entries, lock_run_dir
from srnet_cli.errors import RunDirError, UsageError
from srnet_cli.parsing import json_loads, toml_loads
from srnet_cli.recipes.results import RunResults

if TYPE_CHECKING:
    from accelerate import Accelerator


def start_run(
    preset: FinetunePreset,
    ctx: RunContext,
    overwrite: bool,
    paths: tuple[Path | str | None, ...],
    accelerator: Accelerator = None,
    resume_run: bool = False,
) -> Path:
    """Create the run directory (only after every check passed) and record how the run was made; on --resume,
    repair what a kill may have left half-written instead. Only the main process writes; the others wait."""
    assert ctx.out_dir is not None
    out = ctx.out_dir
    barrier(accelerator)  # every rank has passed its checks before the directory changes
    if is_main(accelerator):
        if resume_run:
            repair_run(out, ctx)
        else:
            prepare_out_dir(out, overwrite, paths)
            write_text_atomic(out / "preset.toml", dump_toml(preset))
            write_json(out / "env.json", environment(ctx.device, preset.train.seed))
    barrier(accelerator)
    return out


def check_resume_dir(out: Path, preset: FinetunePreset) -> None:
    """--resume needs a run of this command with this exact preset in OUT (its preset.toml); OUT is locked first,
    so that two --resume of one run never both continue it."""
    if not out.is_dir():
        raise RunDirError(f"--resume: {out} holds no run to resume", "start the run without --resume")
    lock_run_dir(out)
    if not entries(out):
        raise RunDirError(f"--resume: {out} holds no run to resume", "start the run without --resume")
    saved = out / "preset.toml"
    if not (out / MARKER).is_file() or not saved.is_file():
        raise RunDirError(f"--resume: {out} is not an srnet run directory", "pass the --out of the run to resume")
    try:
        before = flatten(toml_loads(saved.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(
            f"--resume: {saved} is damaged ({exc})",
            "the run cannot be checked against this command: start it again with --overwrite, or in a new --out",
        ) from exc
    now = flatten(toml_loads(dump_toml(preset)))
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            was, new = before.get(key, "unset"), now.get(key, "unset")
            raise UsageError(
                f"--resume: {key} is {was!r} in {saved} but {new!r} now",
                "resume with the command and options that started the run",
            )


def finished_run(preset: FinetunePreset, ctx: RunContext, resume_run: bool) -> RunResults | None:
    """--resume on a run that finished (with these options): its results, nothing recomputed, so a re-submitted
    job is a no-op."""
    results = ctx.out_dir / "results.json" if ctx.out_dir is not None else None
    if not resume_run or results is None or not results.is_file():
        return None
    check_resume_dir(results.parent, preset)
    ctx.reporter.log(f"{ctx.out_dir} is complete (results.json); nothing to resume")
    try:
        done = json_loads(results.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"--resume: {results} is damaged ({exc})", "start the run again with --overwrite") from exc
    if not isinstance(done, dict):
        raise RunDirError(f"--resume: {results} is not a results object", "start the run again with --overwrite")
    try:
        return RunResults.model_validate(done)
    except ValidationError as exc:
        reason = f"{exc.error_count()} invalid field(s), e.g. {exc.errors()[0]['loc']}"
        hint = "start the run again with --overwrite"
        raise RunDirError(f"--resume: {results} is not srnet's results ({reason})", hint) from exc


def repair_run(out: Path, ctx: RunContext) -> None:
    """Undo what a kill left half-done: an interrupted state or model swap, metrics lines after the last state."""
    state = resume.recover(out)
    recover_dir(out / "model")
    lines = 0
    if state is not None:
        meta = resume.read_meta(out)
        lines = meta["metrics_lines"]
        ctx.reporter.log(f"resuming {out} from step {meta['step']}")
    else:
        ctx.reporter.log(f"{out} has no resumable state yet; starting again from step 0")
    truncate_lines(out / "metrics.jsonl", lines)


def finish_run(out: Path, results: RunResults) -> None:
    """results.json, then the resumable state goes: a finished run is never resumed, and the state (weights and
    AdamW moments: ~1.3 GB for BERT-base) would otherwise stay in every run directory."""
    write_json(out / "results.json", results.json_dict())
    shutil.rmtree(out / "resume", ignore_errors=True)
