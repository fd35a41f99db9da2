"""Evaluate a classifier on a task's ID dev splits and OOD sets, with label mapping by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from srnet_cli.engine.data.batching import Encoded, encode
from srnet_cli.engine.data.readers import Dataset
from srnet_cli.engine.data.tasks import TaskSpec, report_kind
from srnet_cli.engine.evaluation.metrics import (
    Metrics,
    Predictions,
    SetMetrics,
    accuracy,
    hans_report,
    paraphrase_report,
    symmetric_report,
)
from srnet_cli.engine.runs.context import Reporter
from srnet_cli.engine.training.loop import predict_logits
from srnet_cli.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class EvalSet:
    name: str
    dataset: Dataset
    encoded: Encoded


def head_labels(model_labels: tuple[str, ...], task: TaskSpec, reporter: Reporter | None = None) -> tuple[str, ...]:
    """Names of the model's output classes in the task's vocabulary (mapping is by name, never by position)."""
    by_lower = {name.lower(): name for name in task.labels}  # FEVER's labels are upper case, configs vary
    lowered = tuple(name.lower() for name in model_labels)
    if set(lowered) == set(by_lower):
        return tuple(by_lower[name] for name in lowered)
    generic = tuple(f"label_{i}" for i in range(len(model_labels)))
    if lowered == generic and len(model_labels) == len(task.labels):
        if reporter is not None:
            reporter.log(
                f"warning: the model's labels have no names; assuming the {task.name} order {', '.join(task.labels)}"
            )
        return task.labels
    raise ModelError(
        f"the model's labels ({', '.join(model_labels)}) are not the {task.name} labels ({', '.join(task.labels)})",
        f"evaluate a model fine-tuned on {task.name}",
    )


def encode_sets(
    datasets: list[Dataset], tokenizer: PreTrainedTokenizerBase, max_length: int, labels: tuple[str, ...]
) -> list[EvalSet]:
    index = {name: i for i, name in enumerate(labels)}
    return [EvalSet(d.split or d.name, d, encode(d.examples, tokenizer, max_length, index)) for d in datasets]


def predicted_labels(logits: torch.Tensor, labels: tuple[str, ...]) -> list[str]:
    return [labels[i] for i in logits.argmax(dim=-1).tolist()]


def set_metrics(
    task: str,
    name: str,
    logits: torch.Tensor,
    labels: tuple[str, ...],
    dataset: Dataset,
    predicted: list[str] | None = None,
) -> SetMetrics:
    """The metrics researchers report for one evaluation set, from the model's logits (and its argmax labels, if
    the caller has them already)."""
    predicted = predicted if predicted is not None else predicted_labels(logits, labels)
    kind = report_kind(task, name)
    if kind == "hans":
        return {"n": len(predicted), **hans_report(predicted, dataset.examples)}
    if kind == "paraphrase":
        return {"n": len(predicted), **paraphrase_report(predicted, dataset.labels)}
    if kind == "symmetric":
        two_way = [labels.index("SUPPORTS"), labels.index("REFUTES")]
        predicted_2way = [labels[two_way[i]] for i in logits[:, two_way].argmax(dim=-1).tolist()]
        return {"n": len(predicted), **symmetric_report(predicted, predicted_2way, dataset.labels)}
    return {"acc": accuracy(predicted, dataset.labels), "n": len(predicted)}


def evaluate_sets(
    model: torch.nn.Module,
    sets: list[EvalSet],
    labels: tuple[str, ...],
    batch_size: int,
    device: torch.device | str,
    task: str,
    keep_logits: dict[str, torch.Tensor] | None = None,
    known: tuple[Metrics, Predictions] | None = None,
    progress: Reporter | None = None,
) -> tuple[Metrics, Predictions]:
    """Metrics per set and the predicted label names per set (and each set's logits into `keep_logits`).

    `known`: (metrics, predictions) this very model already had on some sets (the selected checkpoint on the
    selection set); those sets are not predicted again, since the same weights on the same batches give the same
    numbers."""
    metrics: Metrics = {}
    predictions: Predictions = {}
    for s in sets:
        if known is not None and s.name in known[0] and keep_logits is None:
            metrics[s.name], predictions[s.name] = known[0][s.name], known[1][s.name]
            continue
        logits = predict_logits(model, s.encoded, batch_size, device, progress, f"evaluate {s.name}")
        if keep_logits is not None:
            keep_logits[s.name] = logits
        predictions[s.name] = predicted_labels(logits, labels)
        metrics[s.name] = set_metrics(task, s.name, logits, labels, s.dataset, predictions[s.name])
    return metrics, predictions


def write_predictions(out: Path, sets: list[EvalSet], predictions: Predictions) -> list[Path]:
    """HANS in McCoy's evaluator format (`pairID,gold_label` header, the model's 3-way label); others as TSV."""
    from srnet_cli.engine.runs.files import write_text_atomic

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
