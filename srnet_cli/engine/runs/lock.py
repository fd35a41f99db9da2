"""One writer per run directory: an OS file lock on OUT/.srnet-lock, held until the command ends.

Taken before OUT is checked for emptiness and before `--resume` reads a state, so that a second run (or a second
`--resume`) into the same OUT is refused at once instead of interleaving writes. The kernel drops the lock when the
process dies (kill -9 included), so a stale lock file never blocks a later run, and the lock file is removed when the
command ends (a refused run leaves nothing in a directory it did not make). Only the main process of a multi-process
launch locks: its peers write nothing.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from srnet_cli.errors import RunDirError

LOCK = ".srnet-lock"
MARKER = ".srnet-run"  # written into every directory srnet creates; --overwrite replaces only such directories
# What a run directory holds before its run produced anything: a failed run that created OUT leaves no OUT behind.
BOOKKEEPING = {LOCK, MARKER, "preset.toml", "env.json"}


@dataclass
class _Held:
    fd: int
    created: Path | None  # the topmost directory this process created to hold the lock (removed on failure)


_held: dict[Path, _Held] = {}


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def lock_run_dir(out: Path) -> None:
    """Lock OUT (created if missing) for this process; refuse if another process holds it. Re-entrant."""
    if not _is_main_process():
        return
    target = out.resolve()
    if target in _held:
        return
    created = None
    probe = target
    while not probe.exists():
        created, probe = probe, probe.parent
    target.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a holder may remove the file between our open and our lock: then lock the new one
        fd = os.open(target / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise RunDirError(
                f"--out {out} is in use by process {holder or '(starting)'}",
                "wait for that run to end, or choose another --out",
            ) from None
        if _same_file(fd, target / LOCK):
            break
        os.close(fd)
    else:
        raise RunDirError(f"--out {out}: its lock file keeps changing", "another process is starting there: retry")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[target] = _Held(fd, created)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def locked_dirs() -> list[Path]:
    return list(_held)


def release_locks(failed: bool) -> None:
    """Drop every lock this process holds. After a failure, a directory this process created and that holds only
    bookkeeping (no metrics, model or resumable state yet) is removed again: a refused command leaves nothing."""
    for target, held in reversed(list(_held.items())):
        try:
            (target / LOCK).unlink(missing_ok=True)  # a later locker checks it locked the file still in place
            if failed and held.created is not None and {p.name for p in target.iterdir()} <= BOOKKEEPING:
                for name in BOOKKEEPING:
                    (target / name).unlink(missing_ok=True)
                _remove_empty_dirs(target, held.created)
        except OSError:  # the directory went away or became read-only: nothing left to tidy
            pass
        finally:
            os.close(held.fd)
            del _held[target]


def _remove_empty_dirs(target: Path, top: Path) -> None:
    path = target
    while True:
        try:
            path.rmdir()
        except OSError:
            return
        if path == top:
            return
        path = path.parent


def entries(directory: Path) -> list[Path]:
    """What a run directory holds, not counting its lock file (nothing, if it does not exist yet)."""
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.name != LOCK]
