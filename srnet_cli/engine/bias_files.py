"""Bias-model log-probabilities on disk: srnet's JSON format (keyed by example id, with label names) and the
original project's row-aligned MNLI `.npy` (columns contradiction, entailment, neutral).

Alignment is by example id; anything that does not line up is an error naming the first bad id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from srnet_cli.engine.readers import Dataset
from srnet_cli.errors import BiasFileError

FORMAT = "srnet-bias/1"
NPY_COLUMNS = {"mnli": ("contradiction", "entailment", "neutral")}
HINT = "make one with `srnet bias-model --task mnli --kind overlap --data-dir DATA --out BIAS`"


def write_bias_json(path: Path, task: str, kind: str, labels: list[str], ids: list[str], log_probs: np.ndarray) -> None:
    payload = {
        "format": FORMAT,
        "task": task,
        "kind": kind,
        "labels": labels,
        "log_probs": {i: [round(float(x), 6) for x in row] for i, row in zip(ids, log_probs, strict=True)},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)


def _row_key(example_id: str) -> int:
    """The original loader's key: the first integer in the guid (`train-17` -> 17)."""
    match = re.search(r"\d+", example_id)
    if match is None:
        raise BiasFileError(f"example id {example_id!r} has no row number for a row-aligned .npy", HINT)
    return int(match.group())


def load_bias(path: Path, task: str, labels: tuple[str, ...], train: Dataset) -> np.ndarray:
    """Bias log-probs aligned with `train.examples`, columns in `labels` order."""
    if path.is_dir():
        path = path / "bias.json"
    if not path.is_file():
        raise BiasFileError(f"bias file not found: {path}", HINT)
    ids = [e.id for e in train.examples]
    if path.suffix not in (".npy", ".json"):
        raise BiasFileError(
            f"unsupported bias file type {path.suffix!r}: {path}", "use srnet's .json or an original .npy"
        )
    try:
        if path.suffix == ".npy":
            array, columns = _load_npy(path, task, train), NPY_COLUMNS[task]
        else:
            array, columns = _load_json(path, task, ids)
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}" if str(exc) else type(exc).__name__
        raise BiasFileError(f"{path} cannot be read as a bias file ({reason})", HINT) from exc
    _check_values(array, path, ids)
    missing = [name for name in labels if name not in columns]
    if missing:
        raise BiasFileError(f"{path} has no column for label {missing[0]!r} (has {', '.join(columns)})", HINT)
    return array[:, [columns.index(name) for name in labels]]


def _load_npy(path: Path, task: str, train: Dataset) -> np.ndarray:
    if task not in NPY_COLUMNS:
        raise BiasFileError(f"no row-aligned .npy layout is known for task {task!r}", "use srnet's .json bias file")
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or array.shape[1] != len(NPY_COLUMNS[task]) or not np.issubdtype(array.dtype, np.number):
        raise BiasFileError(f"{path} has shape {array.shape} ({array.dtype}); expected float (rows, 3)", HINT)
    keys = [_row_key(e.id) for e in train.examples]
    first_bad = next((e.id for e, k in zip(train.examples, keys, strict=True) if k >= array.shape[0]), None)
    if array.shape[0] != train.n_rows or first_bad is not None:
        where = f"first id without a row: {first_bad}" if first_bad else "the file has a different number of rows"
        raise BiasFileError(
            f"{path} has {array.shape[0]} rows but {train.source} has {train.n_rows} ({where})",
            "use the .npy made for exactly this train.tsv",
        )
    return array[keys].astype(np.float32)


def _load_json(path: Path, task: str, ids: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    try:
        payload = json.loads(path.read_text())
        table = payload["log_probs"]
        columns = tuple(payload["labels"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise BiasFileError(f"{path} is not a srnet bias file ({type(exc).__name__})", HINT) from exc
    if payload.get("task") not in (None, task):
        raise BiasFileError(f"{path} was made for task {payload['task']!r}, not {task!r}", HINT)
    missing = next((i for i in ids if i not in table), None)
    if missing is not None:
        n_missing = sum(i not in table for i in ids)
        raise BiasFileError(f"{path} has no entry for example id {missing!r} ({n_missing} ids missing)", HINT)
    rows = [table[i] for i in ids]
    bad = next((i for i, r in zip(ids, rows, strict=True) if len(r) != len(columns)), None)
    if bad is not None:
        raise BiasFileError(f"{path}: entry {bad!r} does not have {len(columns)} values", HINT)
    return np.asarray(rows, dtype=np.float32), columns


def _check_values(array: np.ndarray, path: Path, ids: list[str]) -> None:
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise BiasFileError(f"{path}: non-finite value for example id {ids[int(np.argmin(finite))]!r}", HINT)
    sums = np.exp(array.astype(np.float64)).sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-3
    if off.any():
        i = int(np.argmax(off))
        looks_like_probs = (array >= 0).all() and np.allclose(array.sum(axis=1), 1.0, atol=1e-3)
        what = "holds probabilities, not log-probabilities" if looks_like_probs else "rows are not log-probabilities"
        raise BiasFileError(
            f"{path} {what} (example id {ids[i]!r}: exp-sum {sums[i]:.3f})",
            "pass the log_probs file (the original project's log_probs.npy, not probs.npy)",
        )
