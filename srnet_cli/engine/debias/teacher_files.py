"""Teacher probabilities for confidence regularisation: written by `srnet evaluate --split train --save-probs`,
keyed by example id with label names (`srnet-probs/1` JSON); the original project's row-aligned `probs.npy` is read
too. Anything that does not line up with the training data is an error naming the first bad id."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srnet_cli.engine.data.readers import Dataset
from srnet_cli.engine.debias.bias_files import NPY_COLUMNS, label_names, rows_by_id, select_columns, write_rows_json
from srnet_cli.errors import BiasFileError
from srnet_cli.parsing import NestingError, json_loads

FORMAT = "srnet-probs/1"
HINT = "make it from the CE model: `srnet evaluate --model CE/model --split train --save-probs T.json --data-dir D`"


def write_probs_json(path: Path, task: str, model: str, labels: list[str], ids: list[str], probs: np.ndarray) -> None:
    write_rows_json(path, {"format": FORMAT, "task": task, "model": model, "labels": labels}, "probs", ids, probs, 7)


def load_teacher(path: Path, task: str, labels: tuple[str, ...], train: Dataset) -> np.ndarray:
    """Teacher probabilities aligned with `train.examples`, columns in `labels` order."""
    if path.is_dir():
        path = next((path / n for n in ("probs.json", "probs.npy") if (path / n).is_file()), path / "probs.json")
    if not path.is_file():
        raise BiasFileError(f"teacher file not found: {path}", HINT)
    if path.suffix not in (".json", ".npy"):
        raise BiasFileError(f"unsupported teacher file type {path.suffix!r}: {path}", "use srnet's .json or a .npy")
    try:
        array, columns = _load_npy(path, task, train) if path.suffix == ".npy" else _load_json(path, task, train)
    except (ValueError, TypeError, OSError, UnicodeDecodeError, KeyError, IndexError) as exc:
        what = f"JSON {exc}" if isinstance(exc, NestingError) else type(exc).__name__
        raise BiasFileError(f"{path} cannot be read as teacher probabilities ({what})", HINT) from exc
    ids = [e.id for e in train.examples]
    bad = ~np.isfinite(array).all(axis=1) | (array < 0).any(axis=1) | (np.abs(array.sum(axis=1) - 1.0) > 1e-3)
    if bad.any():
        raise BiasFileError(
            f"{path}: the row of example id {ids[int(np.argmax(bad))]!r} is not a probability distribution",
            "pass probabilities (the original's probs.npy, not log_probs.npy)",
        )
    return select_columns(array, columns, labels, path, HINT).astype(np.float32)


def _load_json(path: Path, task: str, train: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    payload = json_loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BiasFileError(f"{path} is not a srnet teacher file (format {FORMAT})", HINT)
    if payload.get("task") != task:
        raise BiasFileError(f"{path} was made for task {payload.get('task')!r}, not {task!r}", HINT)
    table, columns = payload["probs"], label_names(payload["labels"], path)
    ids = [e.id for e in train.examples]
    return rows_by_id(
        table, ids, len(columns), path, "make the teacher file from the same training data", HINT
    ), columns


def _load_npy(path: Path, task: str, train: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """The original `probs.npy`: one row per training-file row, in the task's label order."""
    array = np.load(path, allow_pickle=False)
    columns = NPY_COLUMNS.get(task)
    if columns is None or array.ndim != 2 or array.shape[1] != len(columns):
        raise BiasFileError(f"{path} has shape {array.shape}; expected (rows, {len(columns or ())})", HINT)
    if array.shape[0] != train.n_rows:
        raise BiasFileError(
            f"{path} has {array.shape[0]} rows but {train.source} has {train.n_rows}",
            "use the probs.npy made for exactly this training file",
        )
    # the original indexed teacher rows by position in the training file
    return array[[e.row for e in train.examples]].astype(np.float64), columns
