"""The `srnet` console script and `python -m srnet_cli`: signals are handled from the first instruction.

The CLI imports typer, rich, pydantic and (for most commands) torch, which takes seconds; Ctrl-C or a scheduler's
SIGTERM in that window, or while the process cleans up, must end like one during a run: one `error:` line, a
`hint:` line and exit 130 / 143, never a traceback. This module imports nothing heavy before installing them.
"""

from __future__ import annotations

import os
import signal
import sys

from srnet_cli.errors import Interrupted

NAMES = {signal.SIGINT: ("Ctrl-C (SIGINT)", 130), signal.SIGTERM: ("SIGTERM", 143)}


def _exit_now(signum: int, frame: object) -> None:
    """Outside a command's run (start-up, clean-up) a signal ends the process at once. Raising here instead is not
    safe: a start-up signal can land while torch's C++ import code calls back into Python, where an exception
    aborts the process ("terminate called after throwing ...")."""
    _stop(*NAMES[signal.Signals(signum)])


def _stop(name: str, code: int) -> None:
    """Report an interruption outside the CLI's error boundary (start-up, clean-up), and exit at once: modules may
    be half-imported, so nothing else runs."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a second signal must not interrupt this report
    _flush()
    try:
        sys.stderr.write(f"error: interrupted by {name}\nhint: run the command again\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def main() -> None:
    for sig in NAMES:  # the error boundary makes them raise while a command runs, so that it unwinds cleanly
        signal.signal(sig, _exit_now)
    try:
        from srnet_cli.engine.runs.devices import keep_freed_memory

        keep_freed_memory()  # before torch allocates anything
        from srnet_cli.cli import main as run_cli

        run_cli()
    except KeyboardInterrupt:
        _stop("Ctrl-C (SIGINT)", 130)
    except SystemExit as exc:
        if exc.code in (130, 143):  # interrupted, and reported by the error boundary
            # A KeyboardInterrupt that once passed through C code running Python (torch's import does) makes the
            # interpreter end itself by SIGINT at exit, whatever the exit code: leave with the code now
            _flush()
            os._exit(int(exc.code))
        raise
    except Interrupted as exc:
        _stop(exc.signal_name, exc.exit_code)
