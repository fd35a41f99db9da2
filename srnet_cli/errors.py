"""Errors a user can fix. Each carries a one-line message, a hint (what to do), and an exit code.

The CLI prints `error: <message>` and `hint: <hint>` and exits with `exit_code`; no traceback unless SRNET_DEBUG=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class SrnetError(Exception):
    """A domain error: bad data, missing files, mismatched bias file... Exit code 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple:
        # A stage of `srnet demo` fails in a worker process: its error must reach the parent whole (a subclass's
        # own __init__ arguments, PresetError's lines, the hint), not rebuilt from `args` alone.
        return _rebuild, (type(self), self.args, self.__dict__)


class UsageError(SrnetError):
    """Flags that conflict or are missing. Exit code 2."""

    exit_code = 2


class PresetError(SrnetError):
    """A preset that does not validate; `lines` holds one `dotted.path: problem` per error. Exit code 2."""

    exit_code = 2

    def __init__(self, lines: list[str], hint: str = "") -> None:
        super().__init__("; ".join(lines), hint)
        self.lines = lines


class DataError(SrnetError):
    """Missing or malformed data files."""


class MissingDataError(DataError):
    """A data file (or hub dataset) that is not there at all, as opposed to one that is malformed."""


class ModelError(SrnetError):
    """A model that cannot be found or loaded."""


class BiasFileError(SrnetError):
    """A bias or teacher file that does not fit the training data."""


class RunDirError(SrnetError):
    """An output directory that cannot be used (not empty, is a file, not writable)."""


class MaskError(SrnetError):
    """A mask that does not fit the model, or a mask file that cannot be read."""


class Interrupted(BaseException):
    """SIGTERM (a batch scheduler's stop) or SIGINT: a BaseException like KeyboardInterrupt, so that no
    `except Exception` on the way up swallows it."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code

    def __reduce__(self) -> tuple:
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[BaseException], args: tuple, state: dict) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


@contextmanager
def touching(path: object, verb: str = "reading") -> Iterator[None]:
    """Tag an unexpected exception with the file being read or written, for the CLI's one-line report."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "srnet_file", None) is None:
            try:
                exc.srnet_file = (verb, str(path))  # type: ignore[attr-defined]
            except AttributeError:  # an exception type without a __dict__: report it without the file
                pass
        raise


def file_of(exc: BaseException) -> tuple[str, str] | None:
    """(verb, path) of the innermost file an exception was raised while touching, if known."""
    tagged = getattr(exc, "srnet_file", None)
    if tagged is not None:
        return tagged
    filename = getattr(exc, "filename", None)
    return ("using", str(filename)) if filename else None
