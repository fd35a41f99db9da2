"""Bias-model log-probabilities on disk: srnet's JSON format (keyed by example id, with label names), the original
project's row-aligned `.npy` (MNLI: contradiction, entailment, neutral; FEVER: SUPPORTS, REFUTES, NOT ENOUGH INFO)
and its QQP `.pkl` (a dict from pair id to [not duplicate, duplicate]; read only when explicitly allowed).

Alignment is by example id; anything that does not line up is an error naming the first bad id. A 2-class MNLI file
(non-entailment, entailment; Clark et al.'s bias models) expands to 3 classes as log p_non − log 2 for contradiction
and neutral.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
from pathlib import Path

import numpy as np

from srnet_cli.engine.data.readers import Dataset
from srnet_cli.engine.data.tasks import HANS_LABELS, TASKS
from srnet_cli.errors import BiasFileError
from srnet_cli.parsing import NestingError, json_loads

FORMAT = "srnet-bias/1"
# the label order of the original row-aligned arrays: the task's own (its processor order)
NPY_COLUMNS = {name: spec.labels for name, spec in TASKS.items()}
HINT = "make one with `srnet bias-model --task TASK --data-dir DATA --out BIAS`"
PICKLE_HINT = "pass --allow-pickle if you trust the file (pickle can run code when loaded), or convert it to .npy/.json"


def write_rows_json(path: Path, header: dict, key: str, ids: list[str], rows: np.ndarray, digits: int) -> None:
    """`header` plus `key: {example id: [values per label]}`, written atomically (bias and teacher files)."""
    from srnet_cli.engine.runs.files import write_text_atomic

    table = {i: [round(float(x), digits) for x in row] for i, row in zip(ids, rows, strict=True)}
    write_text_atomic(path, json.dumps({**header, key: table}))


def write_bias_json(
    path: Path,
    task: str,
    kind: str,
    labels: list[str],
    ids: list[str],
    log_probs: np.ndarray,
    about: dict | None = None,
) -> None:
    """`about`: how the model was made (its features, the word vectors of the similarity features)."""
    header = {"format": FORMAT, "task": task, "kind": kind, "labels": labels, **(about or {})}
    write_rows_json(path, header, "log_probs", ids, log_probs, 6)


def row_key(example_id: str) -> int:
    """The original loader's key: the first integer in the guid (`train-17` -> 17)."""
    match = re.search(r"\d+", example_id)
    if match is None:
        raise BiasFileError(f"example id {example_id!r} has no row number for a row-aligned .npy", HINT)
    return int(match.group())


def load_bias(path: Path, task: str, labels: tuple[str, ...], train: Dataset, allow_pickle: bool = False) -> np.ndarray:
    """Bias log-probs aligned with `train.examples`, columns in `labels` order."""
    if path.is_dir():
        path = path / "bias.json"
    if not path.is_file():
        raise BiasFileError(f"bias file not found: {path}", HINT)
    ids = [e.id for e in train.examples]
    if path.suffix not in (".npy", ".json", ".pkl"):
        raise BiasFileError(
            f"unsupported bias file type {path.suffix!r}: {path}", "use srnet's .json, an original .npy or .pkl"
        )
    if path.suffix == ".pkl" and not allow_pickle:
        raise BiasFileError(f"{path} is a pickle file and pickles are not loaded by default", PICKLE_HINT)
    try:
        if path.suffix == ".npy":
            array, columns = _load_npy(path, task, train)
        elif path.suffix == ".pkl":
            array, columns = _load_pickle(path, task, train)
        else:
            array, columns = _load_json(path, task, ids)
    except (
        ValueError,
        TypeError,
        OSError,
        UnicodeDecodeError,
        EOFError,
        KeyError,
        IndexError,
        pickle.UnpicklingError,
    ) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}" if str(exc) else type(exc).__name__
        raise BiasFileError(f"{path} cannot be read as a bias file ({reason})", HINT) from exc
    _check_values(array, path, ids)
    if task == "mnli" and tuple(columns) == HANS_LABELS:
        array, columns = expand_two_class(array), NPY_COLUMNS["mnli"]
    return select_columns(array, columns, labels, path, HINT)


def expand_two_class(log_probs: np.ndarray) -> np.ndarray:
    """(non-entailment, entailment) log-probs -> (contradiction, entailment, neutral): the non-entailment mass is
    split evenly, log p_non − log 2 for each (Clark et al.'s loader)."""
    non, ent = log_probs[:, 0], log_probs[:, 1]
    half = non - math.log(2.0)
    return np.stack([half, ent, half], axis=1).astype(np.float32)


def _columns_for(task: str, width: int, path: Path) -> tuple[str, ...]:
    """The label order of an original row-aligned array or pickle: the task's, or 2-class for MNLI."""
    if task not in NPY_COLUMNS:
        raise BiasFileError(f"no original bias layout is known for task {task!r}", "use srnet's .json bias file")
    if width == len(NPY_COLUMNS[task]):
        return NPY_COLUMNS[task]
    if task == "mnli" and width == 2:
        return HANS_LABELS
    raise BiasFileError(f"{path} has {width} columns; {task} expects {len(NPY_COLUMNS[task])}", HINT)


def _load_npy(path: Path, task: str, train: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or array.dtype.kind not in "fiu":  # real numbers only: not complex, not bool, not objects
        raise BiasFileError(f"{path} has shape {array.shape} ({array.dtype}); expected float (rows, classes)", HINT)
    columns = _columns_for(task, array.shape[1], path)
    # MNLI and FEVER: the first number of the id (the `index` column / line), as the original loader; QQP ids are
    # pair ids, so a row-aligned QQP array (not an original format) is indexed by row position.
    keys = [e.row if task == "qqp" else row_key(e.id) for e in train.examples]
    first_bad = next((e.id for e, k in zip(train.examples, keys, strict=True) if k >= array.shape[0]), None)
    if array.shape[0] != train.n_rows or first_bad is not None:
        where = f"first id without a row: {first_bad}" if first_bad else "the file has a different number of rows"
        raise BiasFileError(
            f"{path} has {array.shape[0]} rows but {train.source} has {train.n_rows} ({where})",
            "use the .npy made for exactly this training file",
        )
    return array[keys].astype(np.float32), columns


class _ArraysOnly(pickle.Unpickler):
    """Even an allowed pickle may only rebuild dicts, lists and numpy arrays: no other callable is resolved."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),  # protocol-5 arrays
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a bias pickle")
        return super().find_class(module, name)


def _load_pickle(path: Path, task: str, train: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """The original QQP `.pkl`: a dict from pair id (int or str) to a row of log-probs."""
    table = _ArraysOnly(io.BytesIO(path.read_bytes())).load()
    if not isinstance(table, dict) or not table:
        raise BiasFileError(f"{path} holds a {type(table).__name__}, not a dict from pair id to log-probs", HINT)
    by_key = {int(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in table.items()}
    missing = [e.id for e in train.examples if row_key(e.id) not in by_key]
    if missing:
        raise BiasFileError(f"{path} has no entry for example id {missing[0]!r} ({len(missing)} ids missing)", HINT)
    rows = [by_key[row_key(e.id)] for e in train.examples]
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise BiasFileError(f"{path}: rows have different lengths ({sorted(widths)})", HINT)
    return np.asarray(rows, dtype=np.float32), _columns_for(task, widths.pop(), path)


def _load_json(path: Path, task: str, ids: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    try:
        payload = json_loads(path.read_text(encoding="utf-8"))
        table = payload["log_probs"]
        columns = label_names(payload["labels"], path)
    except NestingError as exc:
        raise BiasFileError(f"{path} is not a srnet bias file (JSON {exc})", HINT) from exc
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise BiasFileError(f"{path} is not a srnet bias file ({type(exc).__name__})", HINT) from exc
    if not isinstance(table, dict):
        raise BiasFileError(f"{path} is not a srnet bias file (log_probs is not an object of example ids)", HINT)
    if payload.get("task") not in (None, task):
        raise BiasFileError(f"{path} was made for task {payload['task']!r}, not {task!r}", HINT)
    return rows_by_id(table, ids, len(columns), path, HINT, HINT).astype(np.float32), columns


def label_names(labels: object, path: Path) -> tuple[str, ...]:
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise BiasFileError(f"{path}: `labels` is not a list of label names ({labels!r:.60})", HINT)
    return tuple(labels)


def rows_by_id(table: dict, ids: list[str], width: int, path: Path, missing_hint: str, hint: str) -> np.ndarray:
    """`table[id]` for every id, in order (bias and teacher JSON files); a missing id or a row of another width is
    an error naming the first one."""
    missing = [i for i in ids if i not in table]
    if missing:
        raise BiasFileError(
            f"{path} has no entry for example id {missing[0]!r} ({len(missing)} ids missing)", missing_hint
        )
    rows = [table[i] for i in ids]
    bad = next((i for i, r in zip(ids, rows, strict=True) if not isinstance(r, list) or len(r) != width), None)
    if bad is not None:
        raise BiasFileError(f"{path}: entry {bad!r} is not a list of {width} values", hint)
    # numbers only: "-0.1" (a string), true (a bool) or [[-0.1]] (nested) are not values numpy should coerce
    bad = next(
        (
            i
            for i, r in zip(ids, rows, strict=True)
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in r)
        ),
        None,
    )
    if bad is not None:
        raise BiasFileError(f"{path}: entry {bad!r} holds something other than numbers", hint)
    try:
        return np.asarray(rows, dtype=np.float64)
    except OverflowError as exc:  # an integer literal beyond float range (10**400)
        raise BiasFileError(f"{path}: a value is too large for a float ({exc})", hint) from exc


def select_columns(
    array: np.ndarray, columns: tuple[str, ...], labels: tuple[str, ...], path: Path, hint: str
) -> np.ndarray:
    """The columns of `array` (named `columns`) in the order of `labels`; a label without a column is an error."""
    missing = [name for name in labels if name not in columns]
    if missing:
        raise BiasFileError(f"{path} has no column for label {missing[0]!r} (has {', '.join(columns)})", hint)
    return array[:, [columns.index(name) for name in labels]]


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
