"""`srnet tasks`: the tasks srnet knows, their evaluation sets, metrics and bias-model kinds."""

from __future__ import annotations

import json
from typing import Any, get_args

from srnet_cli.cli.common import JsonOpt, stdout
from srnet_cli.config.schema import LossKind
from srnet_cli.engine.data.tasks import TASKS


def task_rows() -> list[dict[str, Any]]:
    rows = []
    for spec in TASKS.values():
        rows.append(
            {
                "task": spec.name,
                "labels": list(spec.labels),
                "id_sets": list(spec.id_splits),
                "selects_on": spec.id_splits[0],
                "ood_sets": list(spec.ood_sets),
                "ood_training_data": sorted(spec.ood_train),
                "selection_metrics": list(spec.selection_metrics),
                "bias_kinds": list(spec.bias_kinds),
                "losses": list(get_args(LossKind)),
                "data_dir": spec.folder,
                "files": {split: spec.files[split].paths[0] for split in (*spec.id_splits, *spec.ood_sets)},
                "built_in_benchmark": spec.synth,
            }
        )
    return rows


def tasks(json_: JsonOpt = False) -> None:
    """List the tasks: labels, ID and OOD evaluation sets, selection metrics, bias-model kinds, data files."""
    rows = task_rows()
    if json_:
        print(json.dumps(rows))
        return
    from rich.table import Table

    table = Table(title="tasks (--task)", title_justify="left")
    for column in ("task", "labels", "ID sets (first selects)", "OOD sets", "metrics", "bias kinds", "built-in"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["task"],
            ", ".join(r["labels"]),
            ", ".join(r["id_sets"]),
            ", ".join(r["ood_sets"]),
            ", ".join(r["selection_metrics"]),
            ", ".join(r["bias_kinds"]),
            f"srnet data synth --task {r['built_in_benchmark']}",
        )
    stdout.print(table)
    stdout.print(f"losses (--loss), for every task: {', '.join(get_args(LossKind))}")
