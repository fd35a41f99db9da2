"""Readers for the upstream data files (GLUE MNLI and QQP TSV, HANS, PAWS, FEVER and FEVER-Symmetric jsonl), with a
`datasets` hub fallback when online.

Every example gets a stable id (`{split}-{index}` for MNLI, `{split}-{pair id}` for QQP, `{split}-{line}` for FEVER,
the file's own id for HANS, PAWS and FEVER-Symmetric) and keeps its label by *name*.
Malformed rows are counted and reported with their line numbers, never dropped silently; `strict=True` makes the
first one fatal.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from srnet_cli.engine.data.tasks import HANS_LABELS, TASKS, task_spec
from srnet_cli.errors import DataError, MissingDataError, touching
from srnet_cli.parsing import NestingError, json_loads

# GLUE's MNLI sentences contain double quotes; csv must not treat them as quoting (rows would merge silently).
csv.field_size_limit(sys.maxsize)
STRICT_HINT = "fix the row, or leave out `--set data.strict=true` to skip and count malformed rows"


@dataclass(frozen=True)
class Example:
    id: str
    text_a: str
    text_b: str
    label: str
    row: int  # 0-based data row in its file: the key of row-aligned bias arrays
    meta: tuple[tuple[str, str], ...] = ()  # e.g. HANS heuristic / subcase / template
    line: int = 0  # 1-based line in its file (0: not from a file), for errors that name a row


@dataclass
class Dataset:
    name: str
    source: str
    examples: list[Example]
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    n_rows: int = 0  # data rows in the file, well-formed or not (row-aligned bias arrays must match it)
    split: str = ""  # the split's short name (`dev_matched`, `hans`, `paws_qqp`): evaluation sets are named by it

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
    rows: list[tuple[int, int, dict[str, str]]] = []  # (data row, line number, fields)
    # utf-8-sig: a byte-order mark (Excel, Notepad) would otherwise become part of the first column's name
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path} is empty (no header row)", "point --data-dir at the original files")
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(
                f"{path} has no column {missing[0]!r} (header: {' '.join(header[:12])})",
                "use the upstream file unchanged (GLUE TSV, HANS .txt, PAWS .tsv; docs/reference.md, 'Data layout')",
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
                    rows.append((len(rows) + len(malformed), line_no, record))
                    continue
            if strict:
                raise DataError(f"{path}:{line_no}: {reason}", STRICT_HINT)
            malformed.append((line_no, reason))
    return rows, malformed


def read_mnli(path: Path, split: str, strict: bool = False) -> Dataset:
    """GLUE MNLI TSV: `index` gives the id `{split}-{index}`; sentence1/2 and the last column (gold label)."""
    labels = task_spec("mnli").labels
    rows, malformed = _read_tsv(path, ["sentence1", "sentence2", "index"], "gold_label", labels, strict)
    examples = [
        Example(
            id=f"{split}-{r['index']}",
            text_a=r["sentence1"],
            text_b=r["sentence2"],
            label=r["gold_label"],
            row=pos,
            line=line,
        )
        for pos, line, r in rows
    ]
    return Dataset(f"mnli-{split}", str(path), examples, malformed, len(rows) + len(malformed), split)


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
            line=line,
        )
        for pos, line, r in rows
    ]
    return Dataset(name, str(path), examples, malformed, len(rows) + len(malformed), name)


PARAPHRASE_LABELS = {"0": "not_duplicate", "1": "duplicate"}  # QQP is_duplicate / PAWS label -> qqp label names


def _unwrap_bytes_literal(text: str) -> str:
    """PAWS-QQP's generation script (Python 3) writes sentences as `b'...'` literals of their UTF-8 bytes, escapes
    included (`b'caf\\xc3\\xa9'`, `b'Tom \\'s'`): read the literal (ast.literal_eval: a literal, never code) and
    decode it. A literal that does not parse keeps its inner text."""
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text[2:-1]
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return text[2:-1]
    return text


def read_qqp(path: Path, split: str, strict: bool = False) -> Dataset:
    """GLUE QQP TSV (id, qid1, qid2, question1, question2, is_duplicate): ids `{split}-{pair id}`."""
    required = ["question1", "question2", "id", "is_duplicate"]
    rows, malformed = _read_tsv(path, required, "is_duplicate", tuple(PARAPHRASE_LABELS), strict)
    examples = [
        Example(
            f"{split}-{r['id']}", r["question1"], r["question2"], PARAPHRASE_LABELS[r["is_duplicate"]], pos, line=line
        )
        for pos, line, r in rows
    ]
    return Dataset(f"qqp-{split}", str(path), examples, malformed, len(rows) + len(malformed), split)


def read_paws(path: Path, split: str, strict: bool = False) -> Dataset:
    """PAWS TSV (id, sentence1, sentence2, label), PAWS-qqp or PAWS-wiki; ids are the file's own."""
    rows, malformed = _read_tsv(
        path, ["sentence1", "sentence2", "id", "label"], "label", tuple(PARAPHRASE_LABELS), strict
    )
    examples = [
        Example(
            r["id"],
            _unwrap_bytes_literal(r["sentence1"]),
            _unwrap_bytes_literal(r["sentence2"]),
            PARAPHRASE_LABELS[r["label"]],
            pos,
            line=line,
        )
        for pos, line, r in rows
    ]
    return Dataset(split, str(path), examples, malformed, len(rows) + len(malformed), split)


def _is_unicode(text: str) -> bool:
    """JSON may escape lone surrogates (`"\\ud800"`) that no tokenizer accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_field(record: dict, names: tuple[str, ...]) -> object:
    return next((record[n] for n in names if record.get(n) not in (None, "")), None)


def read_fever(path: Path, split: str, strict: bool = False, symmetric: bool = False) -> Dataset:
    """FEVER jsonl (`claim`, `evidence`, `gold_label` or `label`; ids `{split}-{line}`, the row key of the original
    `.npy`), or FEVER-Symmetric v1 (`evidence_sentence`, `label`) / v2 (`evidence`, `gold_label`) with their own ids."""
    if not path.is_file():
        raise MissingDataError(f"data file not found: {path}", "check --data-dir, or make data with `srnet data synth`")
    labels = task_spec("fever").labels
    examples: list[Example] = []
    malformed: list[tuple[int, str]] = []
    n_rows = 0
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", "re-save it as UTF-8") from exc
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row, n_rows = n_rows, n_rows + 1
        try:
            record = json_loads(line)
            reason = "not a JSON object"
        except NestingError as exc:
            record, reason = None, f"not a FEVER record (JSON {exc})"
        except json.JSONDecodeError as exc:
            record, reason = None, f"not a JSON object ({exc.msg})"
        if isinstance(record, dict):
            claim = _first_field(record, ("claim",))
            evidence = _first_field(record, ("evidence", "evidence_sentence"))
            label = _first_field(record, ("gold_label", "label"))
            if not isinstance(claim, str) or not isinstance(evidence, str):
                reason = "no `claim` and `evidence` (or `evidence_sentence`) text"
            elif not _is_unicode(claim) or not _is_unicode(evidence):
                reason = "text that is not valid Unicode (a lone surrogate escape such as \\ud800)"
            elif label not in labels:
                reason = f"unknown label {label!r} (expected one of {', '.join(labels)})"
            else:
                ident = f"{record['id']}" if symmetric and "id" in record else f"{split}-{row}"
                examples.append(Example(ident, claim, evidence, str(label), row, line=line_no))
                continue
        if strict:
            raise DataError(f"{path}:{line_no}: {reason}", STRICT_HINT)
        malformed.append((line_no, reason))
    if n_rows == 0:
        raise DataError(f"{path} is empty", "point --data-dir at the original files")
    name = split if symmetric else f"fever-{split}"
    return Dataset(name, str(path), examples, malformed, n_rows, split)


# ---------------------------------------------------------------------------------------------- file layout
# the layouts' readers and the hub's splits, from the task definitions
HANS_SPLITS = frozenset(s for spec in TASKS.values() for s, f in spec.files.items() if f.layout == "hans")
# the text columns of a layout's hub rows
HUB_COLUMNS = {layout: ("premise", "hypothesis") for layout in ("mnli", "hans")} | {
    "qqp": ("question1", "question2"),
    "paws": ("sentence1", "sentence2"),
}
HUB_SPLITS = {(t, s): (h.dataset, h.config, h.split) for t, spec in TASKS.items() for s, h in spec.hub.items()}


def task_dir(data_dir: Path, task: str) -> Path:
    """`DATA/MNLI` (product layout); a directory holding the train file itself (the original `--data_dir`) works too."""
    spec = TASKS[task]
    sub = spec.folder
    own = (data_dir / spec.files["train"].paths[0]).is_file() and not (data_dir / sub).is_dir()
    return data_dir if own else data_dir / sub


def mnli_dir(data_dir: Path) -> Path:
    return task_dir(data_dir, "mnli")


def _read(layout: str, path: Path, name: str, strict: bool) -> Dataset:
    """One file in its upstream layout, as the set `name`."""
    if layout == "mnli":
        return read_mnli(path, name, strict)
    if layout == "hans":
        return read_hans(path, strict, name)
    if layout == "qqp":
        return read_qqp(path, name, strict)
    if layout == "paws":
        return read_paws(path, name, strict)
    return read_fever(path, name, strict, symmetric=layout == "fever-sym")


def load_split(task: str, split: str, data_dir: Path | None, strict: bool = False) -> Dataset:
    """Load one split of a task (`train`, `dev_matched`, `hans`, `paws_qqp`, `fever_sym2`, ...) from `data_dir`, or the
    hub if no data directory is given (never both: a typo in a path must not silently switch to other data)."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}", f"use --task {' | '.join(TASKS)}")
    spec = TASKS[task]
    candidates = spec.files[split].paths
    if data_dir is None:
        return _from_hub(task, split, missing=Path(spec.folder) / candidates[0])
    base = task_dir(data_dir, task)
    path = next((base / rel for rel in candidates if (base / rel).is_file()), base / candidates[0])
    if not path.is_file():
        hint = f"check --data-dir (docs/reference.md), or make data with `srnet data synth --task {spec.synth}`"
        raise MissingDataError(f"data file not found: {path}", hint)
    with touching(path):
        return _read(spec.files[split].layout, path, split, strict)


def read_layout(path: Path, layout: str, strict: bool = False) -> Dataset:
    """One file in a known upstream layout (`srnet evaluate --file PATH --layout L`), as the set `file-L`: its
    name tells `report_kind` which breakdown to report (HANS heuristics, PAWS F1s, FEVER-Symmetric)."""
    if not path.is_file():
        raise MissingDataError(f"data file not found: {path}", "pass the path of one file to --file")
    name = f"file-{layout}"
    with touching(path):
        data = _read(layout, path, name, strict)
    data.name = data.split = name
    if not data.examples:
        raise DataError(f"{path} has no usable rows for layout {layout}", "check --layout against the file")
    return data


def count_training_rows(task: str, data_dir: Path) -> tuple[int, Path] | None:
    """Data rows of the task's training file (header and blank lines not counted), without parsing them: what
    `--dry-run` needs to say how many steps an epoch is. None when the file is not there."""
    base = task_dir(data_dir, task)
    path = next((base / rel for rel in TASKS[task].files["train"].paths if (base / rel).is_file()), None)
    if path is None:
        return None
    with path.open("rb") as f:
        rows = sum(1 for line in f if line.strip())
    return rows - (path.suffix != ".jsonl"), path


def check_unique_ids(dataset: Dataset) -> None:
    """Training examples are keyed by id (bias and teacher rows, predictions): two rows with one id would share
    one bias row and be written twice, so a duplicate is an error naming both lines."""
    first_line: dict[str, int] = {}
    for example in dataset.examples:
        if example.id in first_line:
            where = f"lines {first_line[example.id]} and {example.line}" if example.line else "two rows"
            raise DataError(
                f"{dataset.source}: example id {example.id!r} appears twice ({where})",
                "give every row its own id (the index / id / pairID column)",
            )
        first_line[example.id] = example.line


def keep_listed_ids(dataset: Dataset, ids_file: Path) -> None:
    """Keep the examples whose ids `ids_file` lists (one per line), in the data's order; an id the data does not
    have is an error, since the list was made from this data (a bias model's fold)."""
    with touching(ids_file):
        try:
            wanted = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read the id list {ids_file}: {exc}", "check data.train_ids") from None
    known = {e.id for e in dataset.examples}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise DataError(
            f"{ids_file}: {len(unknown)} listed id(s) are not in {dataset.source}, e.g. {unknown[0]!r}",
            "the list must come from this training file (pass the same --data-dir it was made from)",
        )
    keep = set(wanted)
    dataset.examples = [e for e in dataset.examples if e.id in keep]


def _hub_offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _from_hub(task: str, split: str, missing: Path) -> Dataset:
    """Without --data-dir every set must come from the hub: one that cannot is a DataError, not a MissingDataError,
    so that a run stops before training instead of listing the set as missing."""
    hint = f"run `srnet data fetch --task {task} --out D` and pass --data-dir D (README: 'Get the real data')"
    if (task, split) not in HUB_SPLITS:
        raise DataError(
            f"{split} ({missing}) is not on the datasets hub and no --data-dir was given",
            f"{hint}; or leave the set out with --sets",
        )
    if _hub_offline():
        raise DataError(
            f"no --data-dir given and the hub is disabled (HF_HUB_OFFLINE), so {missing} is unavailable", hint
        )
    hub = TASKS[task].hub[split]
    name, config, hub_split = hub.dataset, hub.config, hub.split
    try:
        from datasets import load_dataset

        ds = load_dataset(name, config, split=hub_split) if config else load_dataset(name, split=hub_split)
    except Exception as exc:
        raise DataError(
            f"{missing} unavailable: no --data-dir given and the hub download failed ({type(exc).__name__})", hint
        ) from exc
    return dataset_from_hub_rows(split, ds, task)


def dataset_from_hub_rows(split: str, ds, task: str = "mnli") -> Dataset:
    """Convert hub rows to examples, mapping integer labels through the hub's own label *names*."""
    names = ds.features["label"].names if hasattr(ds, "features") else None
    labels = task_spec(task).labels
    text_a, text_b = HUB_COLUMNS[TASKS[task].files[split].layout]
    examples = []
    malformed: list[tuple[int, str]] = []
    for i, r in enumerate(ds):
        label = names[r["label"]] if names and r["label"] >= 0 else str(r["label"])
        label = PARAPHRASE_LABELS.get(label, label) if task == "qqp" else label
        if split in HANS_SPLITS:
            label = "entailment" if label == "entailment" else "non-entailment"
            meta = (("heuristic", r["heuristic"]), ("subcase", r["subcase"]), ("template", r["template"]))
            examples.append(Example(f"ex{i}", r[text_a], r[text_b], label, i, meta))
        elif label in labels:
            ident = str(r.get("id", i)) if split.startswith("paws") else f"{split}-{r.get('idx', i)}"
            examples.append(Example(ident, r[text_a], r[text_b], label, i))
        else:
            malformed.append((i + 1, f"unknown label {label!r}"))
    own_name = split in HANS_SPLITS or split.startswith("paws")
    return Dataset(split if own_name else f"{task}-{split}", "hub", examples, malformed, len(ds), split)
