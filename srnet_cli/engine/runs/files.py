"""Run directories: refuse to clobber, write atomically, record how the run was made."""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from srnet_cli.engine.runs.faults import fault_point
from srnet_cli.engine.runs.lock import MARKER, entries, lock_run_dir
from srnet_cli.errors import RunDirError, touching

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _writable_parent(path: Path) -> Path:
    parent = path
    while not parent.exists():
        parent = parent.parent
    return parent


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def check_out_dir(out: Path, overwrite: bool, inputs: tuple[Path | str | None, ...] = ()) -> None:
    """Cheap checks before any model loads: OUT is not a file, is writable, and is empty unless --overwrite,
    which replaces only a directory srnet made and never one holding this command's own inputs."""
    if out.is_symlink():
        raise RunDirError(f"--out {out} is a symbolic link", "pass the real directory path to --out")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory", "choose a directory path for --out")
    target = out.resolve()
    if target.parent == target:
        raise RunDirError(f"--out {out} is a filesystem root", "choose a new directory for --out")
    parent = _writable_parent(target.parent)
    if not parent.is_dir():
        raise RunDirError(f"--out {out}: {parent} is a file, not a directory", "choose a directory path for --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {out} is not writable (no write permission on {parent})", "choose another --out")
    lock_run_dir(out)  # before the emptiness check: a second run into OUT is refused, not interleaved
    if not entries(out):
        return
    if not overwrite:
        # an interrupted training run (a finished one has results.json): continuing it is the likely wish
        if (out / "resume" / "state").is_dir() and not (out / "results.json").is_file():
            raise RunDirError(
                f"--out {out} holds an interrupted run",
                "pass --resume to continue it, --overwrite to replace it, or a new --out",
            )
        raise RunDirError(
            f"--out {out} is not empty", "pass --overwrite to replace the srnet run there, or a new --out"
        )
    if not (out / MARKER).is_file():
        raise RunDirError(
            f"--out {out} is not empty and was not made by srnet; refusing to overwrite it",
            "choose a new or empty --out",
        )
    for item in inputs:
        if item is not None and Path(item).exists() and _inside(Path(item).resolve(), target):
            raise RunDirError(
                f"--overwrite would delete an input of this run: {item} is inside --out {out}",
                "write the new run to another --out",
            )


def prepare_out_dir(out: Path, overwrite: bool, inputs: tuple[Path | str | None, ...] = ()) -> Path:
    check_out_dir(out, overwrite, inputs)
    target = out.resolve()
    old = entries(target) if target.is_dir() else []
    if old and overwrite:
        # Only a directory srnet made (checked above) is cleared, around the lock this process holds; the marker
        # goes last, so a kill midway leaves a directory --overwrite still recognises.
        trash = target.with_name(f".{target.name}.old-{os.getpid()}")
        trash.mkdir()
        for item in sorted(old, key=lambda p: p.name == MARKER):
            item.rename(trash / item.name)
        shutil.rmtree(trash)
    target.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target / MARKER, " ".join(sys.argv) + "\n")
    return out


def check_file_target(path: Path, overwrite: bool) -> None:
    """An output *file* (e.g. --save-probs): not a directory, writable, and never replaced without --overwrite."""
    if path.is_dir():
        raise RunDirError(f"{path} is a directory", f"pass a file path, e.g. {path / 'NAME'}")
    if path.exists() and not overwrite:
        raise RunDirError(f"{path} already exists", "pass --overwrite to replace it, or choose another path")
    parent = _writable_parent(path.resolve().parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"{path} is not writable (no write permission on {parent})", "choose another path")


def temp_name(path: Path) -> Path:
    """A temp file beside `path`, unique to this process (two processes never write the same temp file)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)`, then rename over `path`: `path` is the old file or the complete new one, never half of one.
    A failure (a full disk, an interrupt) removes the temp file and leaves `path` as it was."""
    with touching(path, "writing"):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(path)
        try:
            write(tmp)
            fault_point(f"write-{path.name}")
            os.replace(tmp, path)
        except BaseException as exc:
            full = _disk_full(path.parent, exc)
            tmp.unlink(missing_ok=True)
            if full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
            raise


FULL_BELOW = 64 * 2**20  # bytes free under which a failed write is taken to be a full disk


def _disk_full(directory: Path, exc: BaseException) -> bool:
    """torch.save and safetensors report a full disk as a RuntimeError ("unexpected pos ..."), not an OSError:
    a write that fails with (almost) no space left is reported as the full disk it is."""
    if isinstance(exc, OSError) or not isinstance(exc, Exception):
        return False
    try:
        return shutil.disk_usage(directory).free < FULL_BELOW
    except OSError:
        return False


def write_text_atomic(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    write_atomic(path, write)


def write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: Path, obj: Any) -> None:
    with touching(path, "writing"), path.open("a", encoding="utf-8") as f:
        fault_point(f"write-{path.name}")
        f.write(json.dumps(obj) + "\n")
        f.flush()


def _aside(target: Path) -> tuple[Path, Path]:
    """Where `replace_dir` builds the new copy and parks the old one (names unique to this process)."""
    pid = os.getpid()
    return target.with_name(f".{target.name}.tmp-{pid}"), target.with_name(f".{target.name}.old-{pid}")


def replace_dir(target: Path, fill: Callable[[Path], None]) -> None:
    """Build a directory with `fill(tmp)`, then swap it in: `target` is always complete, or absent before the first
    swap; `recover_dir` finishes a swap a kill interrupted. A failure while filling (a full disk, an interrupt)
    drops the temp copy and leaves `target` as it was."""
    tmp, old = _aside(target)
    with touching(target, "writing"):
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            fill(tmp)
        except BaseException as exc:
            full = _disk_full(target.parent, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            if full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from exc
            raise
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        if old.exists():
            shutil.rmtree(old)


def recover_dir(target: Path) -> None:
    """After a kill inside `replace_dir` (by any process: the run directory's lock says no other one is writing):
    put back the previous directory if the swap was half done, and drop temp copies."""
    olds = sorted(target.parent.glob(f".{target.name}.old*"), key=lambda p: p.stat().st_mtime)
    if not target.exists() and olds:
        olds.pop().rename(target)
    for stale in olds + list(target.parent.glob(f".{target.name}.tmp*")):
        shutil.rmtree(stale, ignore_errors=True)


def save_model_atomic(model: nn.Module, tokenizer: PreTrainedTokenizerBase, target: Path) -> None:
    """save_pretrained into a temp dir, then swap it in: `target` is always a complete model or absent."""

    from srnet_cli.engine.sparse.compact import write_carried_layout

    def fill(tmp: Path) -> None:
        cast("PreTrainedModel", model).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_carried_layout(model, tmp)  # a compact model's shapes, without which it cannot be loaded
        fault_point("model-write")

    replace_dir(target, fill)


def save_model_into(model: nn.Module, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """save_pretrained into a temp dir inside `directory`, then move each file in (each move atomic): `directory`
    (a run directory, with its lock and marker) becomes a checkpoint that from_pretrained(directory) loads."""
    from srnet_cli.engine.sparse.compact import write_carried_layout

    tmp = directory / f".model.tmp-{os.getpid()}"
    with touching(directory, "writing"):
        try:
            tmp.mkdir()
            cast("PreTrainedModel", model).save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_carried_layout(model, tmp)
            for item in sorted(tmp.iterdir()):
                os.replace(item, directory / item.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def truncate_lines(path: Path, keep: int) -> None:
    """Keep the first `keep` lines (atomically): lines written after the last resumable state are redone."""
    if not path.is_file():
        return
    with touching(path):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) != keep or (lines and not lines[-1].endswith("\n")):
        write_text_atomic(path, "".join(line for line in lines[:keep]))


def _git_sha() -> str | None:
    """srnet's own commit when it runs from a checkout (not the commit of a repository it is installed into)."""
    package = Path(__file__).resolve().parents[1]
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=package, capture_output=True, text=True, timeout=5
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(top) != 2 or Path(top[0]).resolve() != package.parent:
        return None
    return top[1]


def environment(device: str, seed: int) -> dict[str, Any]:
    import torch
    import transformers

    from srnet_cli import __version__

    return {
        "srnet": __version__,
        "git_sha": _git_sha(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": sys.argv,
        "device": device,
        "threads": torch.get_num_threads(),
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
