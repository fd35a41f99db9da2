"""`srnet bias-model --kind shallow | weak-learner`: a bias model learnt from the data itself, for when nobody knows
the dataset's shortcut.

`shallow` (Utama et al. 2020) fine-tunes the task's model with CE on a small random subset; `weak-learner` (Sanh et
al. 2021) trains the model's first few layers on all of it. Each model is an ordinary `srnet finetune` run under OUT
(its training ids in OUT/train-ids/), and its log-probabilities on the training examples it predicts become
bias.json, which PoE, reweighting and conf-reg read like any other bias file. With k folds, each example is
predicted by the model of its fold, which trained on the other folds only; without folds, the predictions on the
examples the model trained on are in-sample (optimistic), and the results say how many there are.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srnet_cli.config.loader import dump_toml
from srnet_cli.config.schema import BiasModelPreset, FinetunePreset
from srnet_cli.engine.data.readers import Dataset, check_unique_ids, load_split
from srnet_cli.engine.data.tasks import task_spec
from srnet_cli.engine.debias.folds import FoldPlan, plan_folds
from srnet_cli.engine.evaluation.metrics import Metrics
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, write_json, write_text_atomic
from srnet_cli.errors import DataError
from srnet_cli.recipes.results import RunResults

if TYPE_CHECKING:
    import numpy as np

    from srnet_cli.engine.data.readers import Example


def run(preset: BiasModelPreset, ctx: RunContext, overwrite: bool = False) -> dict[str, Any]:
    import numpy as np

    from srnet_cli.engine.debias.bias_files import write_bias_json
    from srnet_cli.engine.evaluation.predict import set_metrics
    from srnet_cli.engine.training.models import check_model_available, save_truncated

    started = time.time()
    task = task_spec(preset.task)
    assert ctx.out_dir is not None
    data_dir = Path(preset.data.dir).expanduser() if preset.data.dir else None
    inputs = (data_dir, preset.model.name_or_path)
    check_out_dir(ctx.out_dir, overwrite, inputs)
    train = _training_data(preset, data_dir)
    ctx.reporter.log(train.summary())
    folds = default_folds(preset)
    plan = plan_folds(len(train.examples), subset_size(preset, len(train.examples), folds), folds, preset.train.seed)
    check_model_available(preset.model.name_or_path)
    out = prepare_out_dir(ctx.out_dir, overwrite, inputs)

    model_path = preset.model.name_or_path
    if preset.kind == "weak-learner":
        layers = preset.learner.layers or 2
        ctx.reporter.log(f"weak learner: the first {layers} layers of {model_path}")
        model_path = str(save_truncated(model_path, layers, out / "weak-learner-model"))

    log_probs = np.zeros((len(train.examples), len(task.labels)))
    runs = []
    per_model: list[Metrics] = []
    for k, (trains_on, predicts) in enumerate(zip(plan.trains_on, plan.predicts, strict=True)):
        name = f"fold-{k}" if folds else "model"
        ids_file = out / "train-ids" / f"{name}.txt"
        write_text_atomic(ids_file, "".join(f"{train.examples[i].id}\n" for i in trains_on))
        ctx.reporter.log(
            f"bias model {name}: trains on {len(trains_on)} examples, predicts {len(predicts)}"
            + (f" (fold {k} of {folds})" if folds else "")
        )
        trained = _train_one(preset, model_path, ids_file, RunContext(out / name, ctx.device, ctx.reporter))
        predicted = [train.examples[i] for i in predicts]
        log_probs[predicts] = _predict(preset, out / name / "model", predicted, ctx.device)
        runs.append({"name": name, "trained_on": len(trains_on), "predicts": len(predicts), "metrics": trained.metrics})
        per_model.append(trained.metrics)

    seen = plan.seen_by_own_model()
    metrics = _train_metrics(task.name, train, plan, log_probs, set_metrics)
    metrics |= _mean_over_models(per_model)
    write_bias_json(
        out / "bias.json", task.name, preset.kind, list(task.labels), [e.id for e in train.examples], log_probs
    )
    write_text_atomic(out / "preset.toml", dump_toml(preset))
    results = {
        "command": "bias-model",
        "task": task.name,
        "kind": preset.kind,
        "model": preset.model.name_or_path,
        "folds": folds,
        "training_examples": len(train.examples),
        "seen_by_own_model": seen,  # predictions on these are in-sample, hence optimistic
        "models": runs,
        "bias_file": str(out / "bias.json"),
        "metrics": metrics,
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "results.json", results)
    return results


def _training_data(preset: BiasModelPreset, data_dir: Path | None) -> Dataset:
    train = load_split(preset.task, "train", data_dir, preset.data.strict)
    if preset.data.train_limit:
        train.examples = train.examples[: preset.data.train_limit]
    if not train.examples:
        raise DataError(f"{train.source} has no usable training rows", "check the file and its labels")
    check_unique_ids(train)  # bias log-probs are keyed by example id
    return train


def default_folds(preset: BiasModelPreset) -> int | None:
    """A shallow model trains on a small subset and would predict its own training examples in-sample (confidently
    right: a debiasing loss would treat them as pure shortcut cases), so by default it is 2-fold: each half is
    predicted by a model trained on a subset of the other half. A weak learner trains on all the data, in-sample by
    design (Sanh et al.). `learner.folds = 1`: one model, in-sample."""
    folds = preset.learner.folds
    if folds is None:
        return 2 if preset.kind == "shallow" else None
    return None if folds == 1 else folds


def subset_size(preset: BiasModelPreset, n: int, folds: int | None) -> int | None:
    """A shallow model's training subset: --subset, or `subset_fraction` of the training data (at least
    `subset_floor`, at most what the other folds hold), so that it stays a small share on a small data set as on
    MNLI."""
    if preset.kind != "shallow":
        return None
    learner = preset.learner
    if learner.subset is not None:
        return learner.subset
    available = n - -(-n // folds) if folds else n  # the other folds of the largest fold
    return min(available, max(learner.subset_floor, round(learner.subset_fraction * n)))


def _train_one(preset: BiasModelPreset, model_path: str, ids_file: Path, ctx: RunContext) -> RunResults:
    """One bias model: srnet's own finetune recipe with CE on the listed training ids."""
    from srnet_cli.recipes import finetune

    raw = preset.model_dump(mode="python", exclude={"command", "kind", "learner", "description"})
    raw["model"] = {**raw["model"], "name_or_path": model_path}
    raw["data"] = {**raw["data"], "train_ids": str(ids_file)}
    return finetune.run(FinetunePreset.model_validate(raw, strict=False), ctx)


def _predict(preset: BiasModelPreset, model_dir: Path, examples: list[Example], device: str) -> np.ndarray:
    """Log-probabilities of `examples` under the saved model (autocast in the run's precision)."""
    import torch

    from srnet_cli.engine.data.batching import encode
    from srnet_cli.engine.runs.devices import make_accelerator
    from srnet_cli.engine.training.loop import predict_logits
    from srnet_cli.engine.training.models import fit_tokenizer, load_for_prediction, load_tokenizer

    labels = task_spec(preset.task).labels
    accelerator = make_accelerator(device, preset.train.mixed_precision)
    model = load_for_prediction(str(model_dir), accelerator.device, preset.train.mixed_precision)  # as it trained
    tokenizer = load_tokenizer(str(model_dir))
    fit_tokenizer(tokenizer, model, str(model_dir))
    data = encode(examples, tokenizer, preset.model.max_length, {n: i for i, n in enumerate(labels)})
    with accelerator.autocast():
        logits = predict_logits(model, data, preset.eval.batch_size, accelerator.device)
    return torch.log_softmax(logits.double(), dim=-1).numpy()


def _train_metrics(task: str, train: Dataset, plan: FoldPlan, log_probs: Any, set_metrics: Any) -> dict[str, Any]:
    """The bias file's accuracy on the training set, split into examples its model trained on (in-sample) and
    those it did not, which is what a debiasing loss will see."""
    import torch

    labels = task_spec(task).labels
    seen = sorted({i for t, p in zip(plan.trains_on, plan.predicts, strict=True) for i in set(t) & set(p)})
    groups = {"train": list(range(len(train.examples)))}
    if seen and len(seen) < len(train.examples):
        seen_set = set(seen)
        groups |= {"train_seen": seen, "train_unseen": [i for i in range(len(train.examples)) if i not in seen_set]}
    out = {}
    for name, rows in groups.items():
        part = replace(train, examples=[train.examples[i] for i in rows], split="train")
        out[name] = set_metrics(task, "train", torch.from_numpy(log_probs[rows]), labels, part)
    return out


def _mean_over_models(per_model: list[Metrics]) -> Metrics:
    """Each evaluation set's metrics averaged over the fold models (with one model: its own)."""
    out: Metrics = {}
    for name in per_model[0]:
        keys = [k for k, v in per_model[0][name].items() if isinstance(v, int | float) and not isinstance(v, bool)]
        out[name] = {k: sum(_number(m[name][k]) for m in per_model) / len(per_model) for k in keys}
    return out


def _number(value: object) -> float:
    assert isinstance(value, int | float), value  # the keys were chosen by the first model's numeric values
    return float(value)
