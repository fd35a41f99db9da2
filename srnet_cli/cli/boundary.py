"""The CLI's one error boundary: every command (and its argument parsing) runs inside `error_boundary`, so any
failure ends as one `error:` line, a `hint:` line and an exit code, never a traceback (`SRNET_DEBUG=1` prints it).

Exit codes: 0 success; 1 a problem with data, models, files or the disk (or an unexpected error); 2 a usage or
preset error; 130 Ctrl-C; 143 SIGTERM (what batch schedulers send before they kill a job).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import typer
from rich.markup import escape
from typer import _click as click
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer 0.29 vendors click as typer._click
from typer.core import TyperGroup

from srnet_cli.errors import Interrupted, PresetError, SrnetError, file_of

REPORT_HINT = "re-run with SRNET_DEBUG=1 to print the traceback, and report it (with that output) to srnet"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


class SrnetGroup(TyperGroup):
    """The top-level command group: parsing and invoking a subcommand both go through the boundary."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with error_boundary():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with error_boundary():
            return super().invoke(ctx)


def _print(kind: str, text: str) -> None:
    from srnet_cli.cli.common import stderr

    style = "bold red" if kind == "error" else "yellow"
    # Messages hold paths and values with brackets: print them, never parse them as markup.
    stderr.print(f"[{style}]{kind}:[/] {escape(text)}", highlight=False, soft_wrap=True)


def report(lines: list[str], hint: str) -> None:
    for line in lines:
        _print("error", line)
    if hint:
        _print("hint", hint)


def report_error(exc: SrnetError) -> None:
    report(exc.lines if isinstance(exc, PresetError) else [exc.message], exc.hint)


def _unsafe(frame: FrameType | None) -> bool:
    """Inside an import or a finaliser, where a raised exception is lost or leaves a module half-made."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib") or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


_signals = {"pending": 0, "reported": False, "active": False}  # the signal stopping this run; reported; in a run


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Stop the run with an exception that unwinds through the atomic writers. Python runs this handler between
    any two bytecodes, and some places lose an exception or break on it: a `__del__` prints and ignores it, and an
    import may swallow it (library `except:`) or be left half-initialised (numpy's lazy attributes then recurse
    forever). There the signal is deferred: sent again 0.1 s later by an interval timer (no thread, nothing to
    lock), and raised at the latest when the command's boundary is left."""
    if _signals["reported"]:
        return  # already stopping
    _signals["pending"] = signum
    if _unsafe(frame):
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        return
    _raise(signum)


def _raise(signum: int) -> None:
    _signals["pending"] = 0  # delivered: from here on it is an exception like any other
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted("SIGTERM", 143)


def _on_alarm(signum: int, frame: Any) -> None:
    pending = _signals["pending"]
    if pending and _signals["active"] and not _signals["reported"]:
        _on_signal(pending, frame)


def _raise_pending() -> None:
    """A signal deferred and not raised yet (it came inside an import): the run stops here."""
    if _signals["pending"] and not _signals["reported"]:
        _raise(int(_signals["pending"]))


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C (an exception that unwinds through the atomic writers), not abruptly; the
    entry point's handlers (exit at once, outside a run) are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _signals.update(reported=False, active=True)
    previous = {sig: signal.signal(sig, handler) for sig, handler in HANDLERS.items()}
    try:
        _raise_pending()  # deferred in an earlier boundary of the same command (argument parsing)
        yield
        _raise_pending()
    finally:
        _signals["active"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


HANDLERS = {signal.SIGTERM: _on_signal, signal.SIGINT: _on_signal, signal.SIGALRM: _on_alarm}


def _after_disk_full() -> str:
    """What the user can do once space is freed, from what this process's run directory really holds."""
    from srnet_cli.engine.runs.lock import BOOKKEEPING, LOCK, locked_dirs

    for run in reversed(locked_dirs()):
        if (run / "resume" / "state").is_dir():
            return f"the last complete state in {run} is intact: run the same command with --resume to continue"
        if {p.name for p in run.iterdir()} - BOOKKEEPING - {LOCK}:
            return (
                f"nothing resumable was saved in {run} yet: run the same command with --resume (it starts again "
                "from step 0), or with --overwrite"
            )
    return "nothing was saved yet: run the command again"


def _resume_hint() -> str:
    from srnet_cli.engine.runs.lock import locked_dirs

    runs = [d for d in locked_dirs() if (d / "preset.toml").is_file() or (d / "resume").is_dir()]
    if runs:
        return (
            f"{runs[-1]} keeps its last saved state: run the same command again with --resume to continue "
            "(a run stopped before its first state starts again from step 0)"
        )
    return "run the command again"


def _where(exc: BaseException) -> str:
    found = file_of(exc)
    return f" while {found[0]} {found[1]}" if found else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _os_error(exc: OSError) -> tuple[str, str]:
    found = file_of(exc)
    path = found[1] if found else "a file"
    if exc.errno in DISK_FULL:
        return (
            f"no space left on device while writing {path}",
            f"free some space (or write --out to another disk); {_after_disk_full()}",
        )
    if exc.errno in NOT_WRITABLE:
        return f"cannot write {path}: {exc.strerror}", "choose a writable location (another --out or --to)"
    return f"{exc.strerror or _first_line(exc)}{_where(exc)}", "check the path and its permissions"


@contextmanager
def error_boundary() -> Iterator[None]:
    """Map every failure to `error:`/`hint:` lines and an exit code; release the run-directory locks either way."""
    from srnet_cli.engine.runs.lock import release_locks

    failed = True
    try:
        with _signals_raise():
            yield
        failed = False
    except typer.Exit as exc:
        failed = exc.exit_code != 0
        raise  # --help, --version, typer.Exit: already handled
    except (typer.Abort, NoArgsIsHelpError):
        raise  # click prints these itself (the help text for a bare group)
    except UsageError as exc:
        _debug()
        command = exc.ctx.command_path if exc.ctx is not None else "srnet"
        report([exc.format_message()], f"see `{command} --help`")
        raise typer.Exit(2) from None
    except SrnetError as exc:
        _debug()
        report_error(exc)
        raise typer.Exit(exc.exit_code) from None
    except (Interrupted, KeyboardInterrupt) as exc:
        _signals.update(reported=True, pending=0)
        name, code = (exc.signal_name, exc.exit_code) if isinstance(exc, Interrupted) else ("Ctrl-C (SIGINT)", 130)
        report([f"interrupted by {name}"], _resume_hint())
        raise typer.Exit(code) from None
    except BrokenPipeError:
        # the reader of stdout went away (`srnet tasks --json | head`): normal for a CLI, so no message; exit 1 as
        # rich does for the same case in --help output
        quiet_stdout()
        raise typer.Exit(1) from None
    except OSError as exc:
        _debug()
        message, hint = _os_error(exc)
        report([message], hint)
        raise typer.Exit(1) from None
    except MemoryError:
        _debug()
        report(["out of memory"], "lower train.batch_size / eval.batch_size or model.max_length")
        raise typer.Exit(1) from None
    except Exception as exc:
        _debug()
        report([f"unexpected {type(exc).__name__}{_where(exc)}: {_first_line(exc)}"], REPORT_HINT)
        raise typer.Exit(1) from None
    finally:
        release_locks(failed)


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush into a closed pipe raises nothing."""
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _debug() -> None:
    if os.environ.get("SRNET_DEBUG"):
        traceback.print_exc()
