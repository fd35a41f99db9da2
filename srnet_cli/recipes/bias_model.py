"""`srnet bias-model`: train a bias-only model and write its log-probabilities keyed by example id."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from srnet_cli.engine.bias_files import write_bias_json
from srnet_cli.engine.bias_model import FEATURES, LogisticRegression, feature_matrix
from srnet_cli.engine.context import Reporter
from srnet_cli.engine.metrics import accuracy, hans_report
from srnet_cli.engine.readers import load_split
from srnet_cli.engine.rundir import check_out_dir, prepare_out_dir, write_json
from srnet_cli.engine.tasks import task_spec
from srnet_cli.errors import DataError
from srnet_cli.recipes.common import load_eval_sets


def run(
    task_name: str, kind: str, data_dir: Path | None, out: Path, reporter: Reporter, overwrite: bool = False
) -> dict[str, Any]:
    started = time.time()
    task = task_spec(task_name)
    check_out_dir(out, overwrite, (data_dir,))
    train = load_split(task.name, "train", data_dir)
    reporter.log(train.summary())
    if not train.examples:
        raise DataError(f"{train.source} has no usable training rows", "check the file and its labels")
    eval_sets = load_eval_sets(task, data_dir, False, reporter)

    labels = list(task.labels)
    y = np.asarray([labels.index(label) for label in train.labels])
    model = LogisticRegression().fit(feature_matrix(train.examples), y, len(labels))
    train_log_probs = model.log_probs(feature_matrix(train.examples))

    def predict(examples: list) -> list[str]:  # noqa: ANN001
        return [labels[i] for i in model.log_probs(feature_matrix(examples)).argmax(axis=1)]

    metrics: dict[str, Any] = {"train": {"acc": accuracy([labels[i] for i in train_log_probs.argmax(1)], train.labels)}}
    for d in eval_sets:
        name = d.name.removeprefix("mnli-")
        predicted = predict(d.examples)
        metrics[name] = hans_report(predicted, d.examples) if name == "hans" else {"acc": accuracy(predicted, d.labels)}

    out = prepare_out_dir(out, overwrite, (data_dir,))
    write_bias_json(out / "bias.json", task.name, kind, labels, [e.id for e in train.examples], train_log_probs)
    results = {
        "command": "bias-model",
        "task": task.name,
        "kind": kind,
        "features": list(FEATURES),
        "bias_file": str(out / "bias.json"),
        "metrics": metrics,
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "results.json", results)
    return results
