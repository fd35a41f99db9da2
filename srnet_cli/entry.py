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


def _on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("SIGTERM", 143)


def _stop(name: str, code: int) -> None:
    """Report an interruption outside the CLI's error boundary (start-up, clean-up), and exit at once: modules may
    be half-imported, so nothing else runs."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a second signal must not interrupt this report
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.write(f"error: interrupted by {name}\nhint: run the command again\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)  # SIGINT already raises KeyboardInterrupt
    try:
        from srnet_cli.cli import main as run_cli

        run_cli()
    except KeyboardInterrupt:
        _stop("Ctrl-C (SIGINT)", 130)
    except Interrupted as exc:
        _stop(exc.signal_name, exc.exit_code)
