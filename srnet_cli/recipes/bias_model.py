"""`srnet bias-model`: train a bias-only model and write its log-probabilities keyed by example id."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from srnet_cli.engine.data.readers import Example, check_unique_ids, load_split
from srnet_cli.engine.data.tasks import task_spec
from srnet_cli.engine.debias.bias_files import NPY_COLUMNS, expand_two_class, write_bias_json
from srnet_cli.engine.debias.clark_model import (
    CLARK_FEATURES,
    FEATURES,
    BalancedLogisticRegression,
    LogisticRegression,
    WordVectors,
    bow_matrix,
    bow_vocabulary,
    clark_matrix,
    embedding_vectors,
    feature_matrix,
    read_vec_file,
    vocabulary,
)
from srnet_cli.engine.runs.context import Reporter
from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, write_json
from srnet_cli.errors import DataError
from srnet_cli.recipes.eval_data import load_eval_sets

DEFAULT_VECTORS = "model:minilm"


def is_clark_model(task: str, kind: str) -> bool:
    """Clark et al.'s overlap model, with its word-vector similarity features (MNLI only)."""
    return kind == "overlap" and task == "mnli"


def word_vectors(given: str, examples: list[Example]) -> WordVectors | None:
    """The similarity features' vectors: a fastText .vec file (the published setup), `model:NAME` (that model's
    input embeddings, offline), or `none` (the similarity features are 0)."""
    if given == "none":
        return None
    if given.startswith("model:"):
        return embedding_vectors(given.removeprefix("model:"), vocabulary(examples))
    path = Path(given).expanduser()
    if not path.is_file():
        raise DataError(
            f"word-vector file not found: {path}",
            "pass a fastText .vec file (e.g. crawl-300d-2M.vec, as Clark et al.), model:minilm, or none",
        )
    return read_vec_file(path, vocabulary(examples))


def featurizer(
    task: str, kind: str, train: list[Example], vectors: WordVectors | None = None
) -> tuple[Callable[[list[Example]], Any], list[str]]:
    """Examples -> feature matrix for a bias kind, and the feature names (the vocabulary for bag-of-words)."""
    if is_clark_model(task, kind):
        return (lambda examples: clark_matrix(examples, vectors)), list(CLARK_FEATURES)
    if kind == "overlap":
        return feature_matrix, list(FEATURES)
    side = (lambda e: e.text_a) if kind == "claim-only" else (lambda e: e.text_b)  # hypothesis-only: text_b
    vocab = bow_vocabulary([side(e) for e in train])
    return (lambda examples: bow_matrix([side(e) for e in examples], vocab)), list(vocab)


def fit(task: str, kind: str, labels: list[str], x: Any, y: np.ndarray) -> Callable[[Any], np.ndarray]:
    """Fit the bias model; returns features -> log-probs over `labels`. The overlap model on MNLI is Clark et al.'s:
    entailment vs non-entailment with balanced class weights, whose mass is split evenly between neutral and
    contradiction (overlap tells them apart no better than chance; a 3-class fit would learn contradiction from
    other cues and leave PoE no gradient)."""
    if task == "mnli" and kind == "overlap":
        entailed = (y == labels.index("entailment")).astype(np.int64)
        binary = BalancedLogisticRegression(c=100.0).fit(x, entailed)  # columns: non-entailment, entailment
        order = [NPY_COLUMNS["mnli"].index(label) for label in labels]  # expand_two_class's column order
        return lambda features: expand_two_class(binary.log_probs(features))[:, order]
    return LogisticRegression().fit(x, y, len(labels)).log_probs


def run(
    task_name: str,
    kind: str,
    data_dir: Path | None,
    out: Path,
    reporter: Reporter,
    overwrite: bool = False,
    vectors_from: str = DEFAULT_VECTORS,
) -> dict[str, Any]:
    import torch

    from srnet_cli.engine.evaluation.predict import set_metrics

    started = time.time()
    task = task_spec(task_name)
    check_out_dir(out, overwrite, (data_dir,))
    train = load_split(task.name, "train", data_dir)
    check_unique_ids(train)  # bias log-probs are keyed by example id
    reporter.log(train.summary())
    if not train.examples:
        raise DataError(f"{train.source} has no usable training rows", "check the file and its labels")
    eval_sets = load_eval_sets(task, data_dir, False, reporter).datasets

    labels = list(task.labels)
    y = np.asarray([labels.index(label) for label in train.labels])
    uses_vectors = is_clark_model(task.name, kind)
    vectors = (
        word_vectors(vectors_from, train.examples + [e for d in eval_sets for e in d.examples])
        if uses_vectors
        else None
    )
    if vectors is not None:
        reporter.log(f"similarity features: {vectors.source} ({len(vectors.vectors)} words with a vector)")
    features, names = featurizer(task.name, kind, train.examples, vectors)
    train_features = features(train.examples)  # built once: a bag of words over FEVER's 242k claims is not free
    log_probs_of = fit(task.name, kind, labels, train_features, y)
    train_log_probs = log_probs_of(train_features)

    metrics: dict[str, Any] = {}
    for d in [train, *eval_sets]:
        log_probs = train_log_probs if d is train else log_probs_of(features(d.examples))
        metrics[d.split or d.name] = set_metrics(task.name, d.split, torch.from_numpy(log_probs), task.labels, d)

    out = prepare_out_dir(out, overwrite, (data_dir,))
    about: dict[str, str | list[str]] = {"features": names} if kind == "overlap" else {}
    if uses_vectors:
        about["word_vectors"] = vectors.source if vectors is not None else "none"
    write_bias_json(out / "bias.json", task.name, kind, labels, [e.id for e in train.examples], train_log_probs, about)
    results = {
        "command": "bias-model",
        "task": task.name,
        "kind": kind,
        "features": names if kind == "overlap" else f"{len(names)} words",
        **({"word_vectors": about["word_vectors"]} if uses_vectors else {}),
        "bias_file": str(out / "bias.json"),
        "metrics": metrics,
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "results.json", results)
    return results
