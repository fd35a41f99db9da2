"""Readers for the upstream data files (GLUE MNLI TSV, HANS), with a `datasets` hub fallback when online.

Every example gets a stable id (`{split}-{index}` for MNLI, HANS's `pairID`) and keeps its label by *name*.
Malformed rows are counted and reported with their line numbers, never dropped silently; `strict=True` makes the
first one fatal.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from srnet_cli.engine.tasks import HANS_LABELS, task_spec
from srnet_cli.errors import DataError, MissingDataError

# GLUE's MNLI sentences contain double quotes; csv must not treat them as quoting (rows would merge silently).
csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class Example:
    id: str
    text_a: str
    text_b: str
    label: str
    row: int  # 0-based data row in its file: the key of row-aligned bias arrays
    meta: tuple[tuple[str, str], ...] = ()  # e.g. HANS heuristic / subcase / template


@dataclass
class Dataset:
    name: str
    source: str
    examples: list[Example]
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    n_rows: int = 0  # data rows in the file, well-formed or not (row-aligned bias arrays must match it)

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.examples]

    def summary(self) -> str:
        text = f"{self.name}: {len(self.examples)} examples from {self.source}"
        if self.malformed:
            line, reason = self.malformed[0]
            text += f"; {len(self.malformed)} malformed rows skipped (first: line {line}: {reason})"
        return text


def _read_tsv(path: Path, required: list[str], label_col: str, labels: tuple[str, ...], strict: bool):
    """Yield (row position, field dict) for well-formed rows; collect malformed ones."""
    if not path.is_file():
        raise MissingDataError(f"data file not found: {path}", "check --data-dir, or make data with `srnet data synth`")
    try:
        return _read_rows(path, required, label_col, labels, strict)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", "re-save the file as UTF-8"
        ) from exc


def _read_rows(path: Path, required: list[str], label_col: str, labels: tuple[str, ...], strict: bool):
    malformed: list[tuple[int, str]] = []
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path} is empty (no header row)", "point --data-dir at the original files")
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(
                f"{path} has no column {missing[0]!r} (header: {' '.join(header[:12])})",
                "use the upstream file unchanged (GLUE MNLI TSV / HANS heuristics_evaluation_set.txt)",
            )
        for line_no, fields in enumerate(reader, start=2):
            if not fields or fields == [""]:
                continue
            if len(fields) != len(header):
                reason = f"expected {len(header)} tab-separated fields, found {len(fields)}"
            else:
                # Dev files carry label1..label5 before the gold label; columns are looked up by header name.
                record = dict(zip(header, fields, strict=True))
                if not record[required[0]].strip() or not record[required[1]].strip():
                    reason = "empty sentence"
                elif record[label_col] not in labels:
                    reason = f"unknown label {record[label_col]!r} (expected one of {', '.join(labels)})"
                else:
                    rows.append((len(rows) + len(malformed), record))
                    continue
            if strict:
                raise DataError(f"{path}:{line_no}: {reason}", "fix the row, or drop --strict to skip and count it")
            malformed.append((line_no, reason))
    return rows, malformed


def read_mnli(path: Path, split: str, strict: bool = False) -> Dataset:
    """GLUE MNLI TSV: `index` gives the id `{split}-{index}`; sentence1/2 and the last column (gold label)."""
    labels = task_spec("mnli").labels
    rows, malformed = _read_tsv(path, ["sentence1", "sentence2", "index"], "gold_label", labels, strict)
    examples = [
        Example(
            id=f"{split}-{r['index']}", text_a=r["sentence1"], text_b=r["sentence2"], label=r["gold_label"], row=pos
        )
        for pos, r in rows
    ]
    return Dataset(f"mnli-{split}", str(path), examples, malformed, n_rows=len(rows) + len(malformed))


def read_hans(path: Path, strict: bool = False, name: str = "hans") -> Dataset:
    """HANS `heuristics_evaluation_set.txt` (11 tab-separated columns); keeps heuristic, subcase and template."""
    required = ["sentence1", "sentence2", "gold_label", "pairID", "heuristic", "subcase", "template"]
    rows, malformed = _read_tsv(path, required, "gold_label", HANS_LABELS, strict)
    examples = [
        Example(
            id=r["pairID"],
            text_a=r["sentence1"],
            text_b=r["sentence2"],
            label=r["gold_label"],
            row=pos,
            meta=(("heuristic", r["heuristic"]), ("subcase", r["subcase"]), ("template", r["template"])),
        )
        for pos, r in rows
    ]
    return Dataset(name, str(path), examples, malformed, n_rows=len(rows) + len(malformed))


# ---------------------------------------------------------------------------------------------- file layout
MNLI_FILES = {"train": "train.tsv", "dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"}
HANS_FILE = "hans/heuristics_evaluation_set.txt"
HANS_TRAIN_FILE = "hans/heuristics_train_set.txt"  # only for the OOD-data upper-bound study (mask-train --train-with)
HANS_SPLITS = {"hans": HANS_FILE, "hans_train": HANS_TRAIN_FILE}
HUB_MNLI_SPLITS = {"train": "train", "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched"}


def mnli_dir(data_dir: Path) -> Path:
    """`DATA/MNLI` (product layout); a directory that itself holds train.tsv (the original `--data_dir`) also works."""
    return data_dir if (data_dir / "train.tsv").is_file() and not (data_dir / "MNLI").is_dir() else data_dir / "MNLI"


def load_split(task: str, split: str, data_dir: Path | None, strict: bool = False) -> Dataset:
    """Load one split (`train`, `dev_matched`, `dev_mismatched`, `hans`, `hans_train`) from `data_dir`, or the hub if no
    data directory is given (never both: a typo in a path must not silently switch to other data)."""
    if task != "mnli":
        raise DataError(f"unknown task {task!r}", "use --task mnli")
    rel = HANS_SPLITS.get(split) or MNLI_FILES[split]
    if data_dir is None:
        return _from_hub(split, missing=Path("MNLI") / rel)
    path = mnli_dir(data_dir) / rel
    if not path.is_file():
        hint = "check --data-dir (README: 'Data layout'), or make data with `srnet data synth --task nli --out DATA`"
        raise MissingDataError(f"data file not found: {path}", hint)
    return read_hans(path, strict, split) if split in HANS_SPLITS else read_mnli(path, split, strict)


def _hub_offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _from_hub(split: str, missing: Path) -> Dataset:
    hint = "run `srnet data synth --task nli --out DATA` and pass --data-dir DATA, or put the GLUE/HANS files there"
    if _hub_offline():
        raise MissingDataError(
            f"no --data-dir given and the hub is disabled (HF_HUB_OFFLINE), so {missing} is unavailable", hint
        )
    try:
        from datasets import load_dataset

        if split in HANS_SPLITS:
            ds = load_dataset("jhu-cogsci/hans", split="validation" if split == "hans" else "train")
        else:
            ds = load_dataset("nyu-mll/glue", "mnli", split=HUB_MNLI_SPLITS[split])
    except Exception as exc:  # noqa: BLE001 - any hub failure means "not available here"
        raise MissingDataError(
            f"{missing} unavailable: no --data-dir given and the hub download failed ({type(exc).__name__})", hint
        ) from exc
    return dataset_from_hub_rows(split, ds)


def dataset_from_hub_rows(split: str, ds) -> Dataset:  # noqa: ANN001 - a datasets.Dataset or a list of dicts
    """Convert hub rows to examples, mapping integer labels through the hub's own label *names*."""
    names = ds.features["label"].names if hasattr(ds, "features") else None
    examples = []
    malformed: list[tuple[int, str]] = []
    for i, r in enumerate(ds):
        label = names[r["label"]] if names and r["label"] >= 0 else str(r["label"])
        if split in HANS_SPLITS:
            label = "entailment" if label == "entailment" else "non-entailment"
            meta = (("heuristic", r["heuristic"]), ("subcase", r["subcase"]), ("template", r["template"]))
            examples.append(Example(f"ex{i}", r["premise"], r["hypothesis"], label, i, meta))
        elif label in task_spec("mnli").labels:
            examples.append(Example(f"{split}-{r.get('idx', i)}", r["premise"], r["hypothesis"], label, i))
        else:
            malformed.append((i + 1, f"unknown label {label!r}"))
    return Dataset(
        name=split if split in HANS_SPLITS else f"mnli-{split}", source="hub", examples=examples, malformed=malformed
    )
