"""Run directories: refuse to clobber, write atomically, record how the run was made."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from srnet_cli.errors import RunDirError

RUN_MARKERS = ("preset.toml", "env.json", "results.json", "summary.json", "bias.json", "synth.json")


def _writable_parent(path: Path) -> Path:
    parent = path
    while not parent.exists():
        parent = parent.parent
    return parent


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Cheap checks before any model loads: OUT is not a file, is writable, and is empty unless --overwrite."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory", "choose a directory path for --out")
    parent = _writable_parent(out)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {out} is not writable (no write permission on {parent})", "choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"--out {out} is not empty", "pass --overwrite to replace the run there, or choose a new --out"
            )
        if not any((out / m).exists() for m in RUN_MARKERS):
            raise RunDirError(
                f"--out {out} is not empty and is not an srnet run directory; refusing to overwrite it",
                "choose a new or empty --out",
            )


def prepare_out_dir(out: Path, overwrite: bool) -> Path:
    check_out_dir(out, overwrite)
    if out.is_dir() and overwrite:
        # Only an srnet run directory (checked above) is cleared; the old one is removed after the rename.
        trash = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(trash)
        shutil.rmtree(trash)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: Path, obj: Any) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()


def save_model_atomic(model: Any, tokenizer: Any, target: Path) -> None:
    """save_pretrained into a temp dir, then swap it in: `target` is always a complete model or absent."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


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
