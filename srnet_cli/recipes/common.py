"""Steps shared by recipes that read a task's data: load splits and report what was skipped."""

from __future__ import annotations

from pathlib import Path

from srnet_cli.engine.context import Reporter
from srnet_cli.engine.readers import Dataset, load_split
from srnet_cli.engine.tasks import TaskSpec
from srnet_cli.errors import DataError, MissingDataError


def load_eval_sets(task: TaskSpec, data_dir: Path | None, strict: bool, reporter: Reporter) -> list[Dataset]:
    """The ID dev splits (required; the first selects checkpoints) followed by the OOD sets that are present.

    A missing OOD set is reported and skipped, so a user with only the ID data can still train and evaluate.
    """
    datasets = [load_split(task.name, split, data_dir, strict) for split in task.id_splits]
    for split in task.ood_sets:
        try:
            datasets.append(load_split(task.name, split, data_dir, strict))
        except MissingDataError as exc:
            reporter.log(f"warning: OOD set {split} skipped: {exc.message}")
    for d in datasets:
        if not d.examples:
            raise DataError(f"{d.source} has no usable rows", "check the file; see `srnet data synth` for the format")
        reporter.log(d.summary())
    return datasets
