"""Steps shared by recipes that read a task's data: load splits and report what was skipped or missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from srnet_cli.engine.data.readers import Dataset, load_split
from srnet_cli.engine.data.tasks import TaskSpec
from srnet_cli.engine.runs.context import Reporter
from srnet_cli.errors import DataError, MissingDataError

FIRST_SKIPPED = 5  # skipped rows' line numbers recorded per set


@dataclass
class EvalData:
    datasets: list[Dataset]
    missing: list[str] = field(default_factory=list)  # OOD sets not found: listed in results and tables


def load_eval_sets(
    task: TaskSpec,
    data_dir: Path | None,
    strict: bool,
    reporter: Reporter,
    sets: list[str] | None = None,
    require_ood: bool = False,
    always: tuple[str, ...] = (),
) -> EvalData:
    """The ID dev splits (required; the first selects checkpoints) followed by the OOD sets that are present;
    with `sets`, only those (and the `always` ones, e.g. the selection set of a training run).

    A missing OOD set is reported and listed as missing, so a user with only the ID data can still train and
    evaluate; `require_ood` makes it an error (CI, cron).
    """
    wanted = [s for s in (*task.id_splits, *task.ood_sets) if sets is None or s in sets or s in always]
    found = EvalData([])
    for split in wanted:
        try:
            found.datasets.append(load_split(task.name, split, data_dir, strict))
        except MissingDataError as exc:
            if split in task.id_splits or require_ood:
                if split not in task.id_splits:
                    exc.hint = f"{exc.hint}; or drop --set data.require_ood=true to list it as missing"
                raise
            reporter.log(f"warning: OOD set {split} missing, not evaluated: {exc.message}")
            found.missing.append(split)
    for d in found.datasets:
        if not d.examples:
            raise DataError(f"{d.source} has no usable rows", "check the file; see `srnet data synth` for the format")
        reporter.log(d.summary())
    return found


def set_rows(dataset: Dataset) -> dict[str, JsonValue]:
    """What was read of one file: its data rows, the examples used, the rows skipped and where the first were."""
    return {
        "source": dataset.source,
        "rows": dataset.n_rows,
        "used": len(dataset.examples),
        "skipped": len(dataset.malformed),
        "first_skipped_lines": [line for line, _ in dataset.malformed[:FIRST_SKIPPED]],
    }


def data_report(datasets: list[Dataset], missing: list[str]) -> dict[str, JsonValue]:
    """The `data.sets` / `data.missing` part of results.json."""
    return {"sets": {d.split or d.name: set_rows(d) for d in datasets}, "missing": list(missing)}
