"""Evaluate a classifier on a task's ID dev splits and OOD sets, with label mapping by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srnet_cli.engine.batching import Encoded, encode
from srnet_cli.engine.context import Reporter
from srnet_cli.engine.loop import predict_logits
from srnet_cli.engine.metrics import accuracy, hans_report
from srnet_cli.engine.readers import Dataset
from srnet_cli.engine.tasks import TaskSpec
from srnet_cli.errors import ModelError


@dataclass
class EvalSet:
    name: str
    dataset: Dataset
    encoded: Encoded


def head_labels(model_labels: tuple[str, ...], task: TaskSpec, reporter: Reporter | None = None) -> tuple[str, ...]:
    """Names of the model's output classes in the task's vocabulary (mapping is by name, never by position)."""
    lowered = tuple(name.lower() for name in model_labels)
    if set(lowered) == set(task.labels):
        return lowered
    generic = tuple(f"label_{i}" for i in range(len(model_labels)))
    if lowered == generic and len(model_labels) == len(task.labels):
        if reporter is not None:
            reporter.log(f"warning: the model's labels have no names; assuming the {task.name} order "
                         f"{', '.join(task.labels)}")  # fmt: skip
        return task.labels
    raise ModelError(
        f"the model's labels ({', '.join(model_labels)}) are not the {task.name} labels ({', '.join(task.labels)})",
        f"evaluate a model fine-tuned on {task.name}",
    )


def encode_sets(datasets: list[Dataset], tokenizer: Any, max_length: int, labels: tuple[str, ...]) -> list[EvalSet]:
    index = {name: i for i, name in enumerate(labels)}
    return [
        EvalSet(d.name.removeprefix("mnli-"), d, encode(d.examples, tokenizer, max_length, index)) for d in datasets
    ]


def evaluate_sets(
    model: torch.nn.Module, sets: list[EvalSet], labels: tuple[str, ...], batch_size: int, device: Any
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Metrics per set and the predicted label names per set."""
    metrics: dict[str, Any] = {}
    predictions: dict[str, list[str]] = {}
    for s in sets:
        logits = predict_logits(model, s.encoded, batch_size, device)
        predicted = [labels[i] for i in logits.argmax(dim=-1).tolist()]
        predictions[s.name] = predicted
        if s.name == "hans":
            metrics[s.name] = {"n": len(predicted), **hans_report(predicted, s.dataset.examples)}
        else:
            metrics[s.name] = {"acc": accuracy(predicted, s.dataset.labels), "n": len(predicted)}
    return metrics, predictions


def write_predictions(out: Path, sets: list[EvalSet], predictions: dict[str, list[str]]) -> list[Path]:
    """HANS in McCoy's evaluator format (`pairID,gold_label` header, the model's 3-way label); others as TSV."""
    from srnet_cli.engine.rundir import write_text_atomic

    written = []
    for s in sets:
        pred = predictions[s.name]
        if s.name == "hans":
            path = out / "predictions" / "hans_preds.txt"
            lines = ["pairID,gold_label"] + [f"{e.id},{p}" for e, p in zip(s.dataset.examples, pred, strict=True)]
        else:
            path = out / "predictions" / f"{s.name}.tsv"
            lines = ["id\tprediction\tgold"] + [
                f"{e.id}\t{p}\t{e.label}" for e, p in zip(s.dataset.examples, pred, strict=True)
            ]
        write_text_atomic(path, "\n".join(lines) + "\n")
        written.append(path)
    return written
