"""Steps every training recipe shares, in the order they must run: cheap input checks (nothing written, no model),
the model, the run directory, tokenisation, the step budget, and evaluation with checkpoint bookkeeping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srnet_cli.config.loader import dump_toml
from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.bias_files import load_bias
from srnet_cli.engine.context import RunContext
from srnet_cli.engine.models import check_model_available
from srnet_cli.engine.readers import Dataset, check_unique_ids, load_split
from srnet_cli.engine.rundir import (
    append_jsonl,
    check_out_dir,
    environment,
    prepare_out_dir,
    write_json,
    write_text_atomic,
)
from srnet_cli.engine.tasks import TaskSpec, task_spec
from srnet_cli.engine.teacher_files import load_teacher
from srnet_cli.engine.tracking import Tracker
from srnet_cli.errors import DataError, UsageError
from srnet_cli.recipes.common import data_report, load_eval_sets, set_rows


@dataclass
class Inputs:
    task: TaskSpec
    train: Dataset
    eval_datasets: list[Dataset]
    bias: Any  # numpy array of log-probs aligned with train.examples, or None
    teacher: Any  # conf-reg: numpy array of teacher probabilities aligned with train.examples, or None
    paths: tuple[Path | str | None, ...]  # files this run reads: --overwrite must never delete them
    ood_train: list[Dataset] = field(default_factory=list)  # OOD training data added (upper-bound study)
    missing: list[str] = field(default_factory=list)  # OOD sets not found (listed as missing in the results)


def load_inputs(preset: FinetunePreset, ctx: RunContext, overwrite: bool, extra: tuple[Any, ...] = (),
                resume: bool = False) -> Inputs:  # fmt: skip
    """Everything cheap: output dir, data, bias alignment, model availability. No model is loaded yet."""
    task = task_spec(preset.task)
    data_dir = Path(preset.data.dir).expanduser() if preset.data.dir else None
    paths = (data_dir, preset.loss.bias, preset.loss.teacher, preset.model.name_or_path, *extra)
    assert ctx.out_dir is not None
    if resume:
        check_resume_dir(ctx.out_dir, preset)
    else:
        check_out_dir(ctx.out_dir, overwrite, paths)
    train = load_split(task.name, "train", data_dir, preset.data.strict)
    if preset.data.train_limit:
        train.examples = train.examples[: preset.data.train_limit]
    if not train.examples:
        raise DataError(f"{train.source} has no usable training rows", "check the file and its labels")
    check_unique_ids(train)
    ctx.reporter.log(train.summary())
    found = load_eval_sets(task, data_dir, preset.data.strict, ctx.reporter, preset.eval.sets,
                           preset.data.require_ood, always=task.id_splits[:1])  # the selection set  # fmt: skip
    loss, labels = preset.loss, task.labels
    bias = load_bias(Path(loss.bias).expanduser(), task.name, labels, train, loss.allow_pickle) if loss.bias else None
    teacher = load_teacher(Path(loss.teacher).expanduser(), task.name, labels, train) if loss.teacher else None
    check_model_available(preset.model.name_or_path)
    return Inputs(task, train, found.datasets, bias, teacher, paths, missing=found.missing)


@dataclass
class Loaded:
    accelerator: Any
    tokenizer: Any
    model: Any
    new_params: set[str]  # parameters the checkpoint did not have (a new classifier head)


def load_model(preset: FinetunePreset, inputs: Inputs, ctx: RunContext) -> Loaded:
    from srnet_cli.engine.devices import make_accelerator, seed_everything
    from srnet_cli.engine.models import check_tokenizer_fits, load_for_task, load_tokenizer

    seed_everything(preset.train.seed)
    accelerator = make_accelerator(ctx.device, preset.train.mixed_precision)
    tokenizer = load_tokenizer(preset.model.name_or_path)
    model, new_params = load_for_task(preset.model.name_or_path, inputs.task.labels)
    check_tokenizer_fits(tokenizer, model, preset.model.name_or_path)
    return Loaded(accelerator, tokenizer, model.to(accelerator.device), new_params)


def start_run(preset: FinetunePreset, ctx: RunContext, overwrite: bool, inputs: Inputs, accelerator: Any = None,
              resume: bool = False) -> Path:  # fmt: skip
    """Create the run directory (only after every check passed) and record how the run was made; on --resume,
    repair what a kill may have left half-written instead. Only the main process writes; the others wait."""
    from srnet_cli.engine.distributed import barrier, is_main

    assert ctx.out_dir is not None
    out = ctx.out_dir
    barrier(accelerator)  # every rank has passed its checks before the directory changes
    if is_main(accelerator):
        if resume:
            repair_run(out, ctx)
        else:
            prepare_out_dir(out, overwrite, inputs.paths)
            write_text_atomic(out / "preset.toml", dump_toml(preset))
            write_json(out / "env.json", environment(ctx.device, preset.train.seed))
    barrier(accelerator)
    return out


def _flat(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resume_dir(out: Path, preset: FinetunePreset) -> None:
    """--resume needs a run of this command with this exact preset in OUT (its preset.toml); OUT is locked first,
    so that two --resume of one run never both continue it."""
    from srnet_cli.engine.rundir import MARKER
    from srnet_cli.engine.runlock import entries, lock_run_dir
    from srnet_cli.errors import RunDirError, UsageError
    from srnet_cli.parsing import toml_loads

    if not out.is_dir():
        raise RunDirError(f"--resume: {out} holds no run to resume", "start the run without --resume")
    lock_run_dir(out)
    if not entries(out):
        raise RunDirError(f"--resume: {out} holds no run to resume", "start the run without --resume")
    saved = out / "preset.toml"
    if not (out / MARKER).is_file() or not saved.is_file():
        raise RunDirError(f"--resume: {out} is not an srnet run directory", "pass the --out of the run to resume")
    try:
        before = _flat(toml_loads(saved.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"--resume: {saved} is damaged ({exc})", "the run cannot be checked against this command: "
                          "start it again with --overwrite, or in a new --out") from exc  # fmt: skip
    now = _flat(toml_loads(dump_toml(preset)))
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            was, new = before.get(key, "unset"), now.get(key, "unset")
            raise UsageError(f"--resume: {key} is {was!r} in {saved} but {new!r} now",
                             "resume with the command and options that started the run")  # fmt: skip


def finished_run(preset: FinetunePreset, ctx: RunContext, resume: bool) -> dict[str, Any] | None:
    """--resume on a run that finished (with these options): its results, nothing recomputed, so a re-submitted
    job is a no-op."""
    from srnet_cli.errors import RunDirError
    from srnet_cli.parsing import json_loads

    results = ctx.out_dir / "results.json" if ctx.out_dir is not None else None
    if not resume or results is None or not results.is_file():
        return None
    check_resume_dir(results.parent, preset)
    ctx.reporter.log(f"{ctx.out_dir} is complete (results.json); nothing to resume")
    try:
        done = json_loads(results.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"--resume: {results} is damaged ({exc})", "start the run again with --overwrite") from exc
    if not isinstance(done, dict):
        raise RunDirError(f"--resume: {results} is not a results object", "start the run again with --overwrite")
    return done


def repair_run(out: Path, ctx: RunContext) -> None:
    """Undo what a kill left half-done: an interrupted state or model swap, metrics lines after the last state."""
    from srnet_cli.engine import resume
    from srnet_cli.engine.rundir import recover_dir, truncate_lines

    state = resume.recover(out)
    recover_dir(out / "model")
    lines = 0
    if state is not None:
        meta = resume.read_meta(out)
        lines = meta["metrics_lines"]
        ctx.reporter.log(f"resuming {out} from step {meta['step']}")
    else:
        ctx.reporter.log(f"{out} has no resumable state yet; starting again from step 0")
    truncate_lines(out / "metrics.jsonl", lines)


@dataclass
class Checkpointer:
    """Writes and restores OUT/resume/state (see engine.resume); `save` is collective (RNG states of all ranks),
    the main process writes."""

    out: Path
    command: str
    accelerator: Any
    stream: Any  # BatchStream

    def save(self, step: int, model: Any, optimizer: Any, scheduler: Any, meta: dict[str, Any],
             tensors: dict[str, Any] | None = None) -> None:  # fmt: skip
        from srnet_cli.engine import resume
        from srnet_cli.engine.distributed import barrier, gather_objects, is_main

        rngs = gather_objects(resume.rng_state())
        if is_main(self.accelerator):
            metrics = self.out / "metrics.jsonl"
            lines = len(metrics.read_text(encoding="utf-8").splitlines()) if metrics.is_file() else 0
            bare = self.accelerator.unwrap_model(model)
            objects = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "stream": self.stream.state(), "rng": rngs}  # fmt: skip
            info = {"command": self.command, "step": step, "processes": len(rngs), "metrics_lines": lines, **meta}
            resume.write_state(self.out, resume.model_tensors(bare) | (tensors or {}), objects, info)
        barrier(self.accelerator)

    def load(self) -> Any:
        """The saved state (None before the first checkpoint), checked against this launch."""
        from srnet_cli.engine import resume
        from srnet_cli.engine.distributed import rank_world
        from srnet_cli.errors import UsageError

        state = resume.read_state(self.out)
        if state is None:
            return None
        world = rank_world(self.accelerator)[1]
        if state.meta["command"] != self.command:
            raise UsageError(f"--resume: {self.out} holds a {state.meta['command']} run, not {self.command}",
                             f"resume it with srnet {state.meta['command']}")  # fmt: skip
        if state.meta["processes"] != world:
            raise UsageError(f"--resume: the run was saved by {state.meta['processes']} processes, this launch has "
                             f"{world}", "resume with the same number of processes")  # fmt: skip
        return state

    def restore(self, state: Any, model: Any, optimizer: Any | None, scheduler: Any | None) -> None:
        """Weights/scores/masks, optimiser and schedule, data order, then RNG last (nothing may draw after it)."""
        from srnet_cli.engine import resume
        from srnet_cli.engine.distributed import rank_world

        resume.restore_model(self.accelerator.unwrap_model(model), state.tensors)
        if optimizer is not None:
            optimizer.load_state_dict(state.objects["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state.objects["scheduler"])
        self.stream.restore(state.objects["stream"])
        resume.set_rng_state(state.objects["rng"][rank_world(self.accelerator)[0]])


def checkpoint_every(preset: FinetunePreset, eval_every: int) -> int:
    """train.checkpoint_every (0: never), or at every evaluation: the state then holds the best-so-far just
    computed."""
    every = preset.train.checkpoint_every
    return eval_every if every is None else every


@dataclass
class MetricsLog:
    """metrics.jsonl (one line per evaluation, main process) and the same numbers to the experiment tracker."""

    out: Path
    tracker: Tracker
    main: bool

    def write(self, line: dict[str, Any]) -> None:
        if not self.main:
            return
        append_jsonl(self.out / "metrics.jsonl", line)
        plain = ("epoch", "level", "sparsity", "target_sparsity")
        values = {key if key in plain else f"eval/{key}": value for key, value in line.items()
                  if key != "step" and not key.endswith(".n") and isinstance(value, int | float)
                  and not isinstance(value, bool)}  # fmt: skip
        self.tracker.log(values, line["step"])

    def finish(self, results: dict[str, Any], step: int) -> None:
        """The final evaluation's numbers (`final/<set>.<metric>`), then the tracker is closed."""
        self.tracker.log({f"final/{k}": v for k, v in flat_metrics(results.get("metrics", {})).items()
                          if not k.endswith(".n")}, step)  # fmt: skip
        self.tracker.finish()


def open_metrics_log(preset: FinetunePreset, ctx: RunContext, out: Path, accelerator: Any) -> MetricsLog:
    """After `start_run`: the tracker logs the resolved preset as hyperparameters, named after the run directory."""
    from srnet_cli.engine.distributed import is_main

    main = is_main(accelerator)
    return MetricsLog(out, Tracker(ctx.log_with, out, preset.model_dump(mode="json"), main), main)


def finish_run(out: Path, results: dict[str, Any]) -> None:
    """results.json, then the resumable state goes: a finished run is never resumed, and the state (weights and
    AdamW moments: ~1.3 GB for BERT-base) would otherwise stay in every run directory."""
    import shutil

    write_json(out / "results.json", results)
    shutil.rmtree(out / "resume", ignore_errors=True)


def load_ood_train(task: TaskSpec, names: list[str], copies: int, data_dir: Path | None, strict: bool,
                   reporter: Any) -> list[Dataset]:  # fmt: skip
    """OOD training sets for the upper-bound study, each repeated `copies` times (ids made unique per copy)."""
    from srnet_cli.engine.readers import Example

    datasets = []
    for name in names:
        for split in task.ood_train[name]:
            data = load_split(task.name, split, data_dir, strict)
            if not data.examples:
                raise DataError(f"{data.source} has no usable rows", "check the file")
            check_unique_ids(data)
            reporter.log(f"{data.summary()}; added to the training data x{copies}")
            data.examples = [Example(f"{split}-{c}-{e.id}", e.text_a, e.text_b, e.label, e.row, e.meta)
                             for c in range(copies) for e in data.examples]  # fmt: skip
            datasets.append(data)
    return datasets


def encode_data(preset: FinetunePreset, inputs: Inputs, loaded: Loaded) -> tuple[Any, list[Any]]:
    """Tokenise the training and evaluation data, and check the model can embed it: before `start_run` writes."""
    import torch

    from srnet_cli.engine.batching import encode
    from srnet_cli.engine.evaluation import encode_sets
    from srnet_cli.engine.losses import NEEDS_BIAS, NEEDS_TEACHER
    from srnet_cli.engine.models import check_encoded_fits
    from srnet_cli.engine.tasks import label_set

    labels = inputs.task.labels
    index = {n: i for i, n in enumerate(labels)}
    examples = inputs.train.examples + [e for d in inputs.ood_train for e in d.examples]
    tokenizer = loaded.tokenizer
    train_enc = encode(examples, tokenizer, preset.model.max_length, index)
    if inputs.ood_train:  # coarser OOD labels (HANS non-entailment): multi-hot sets of allowed classes
        sets = torch.zeros(len(examples), len(labels))
        for row, example in enumerate(examples):
            sets[row, [index[name] for name in label_set(inputs.task, example.label)]] = 1
        train_enc.labels = sets
    if inputs.bias is not None and preset.loss.kind in NEEDS_BIAS:
        train_enc.bias = torch.tensor(inputs.bias, dtype=torch.float32)
    if inputs.teacher is not None and preset.loss.kind in NEEDS_TEACHER:
        train_enc.teacher = torch.tensor(inputs.teacher, dtype=torch.float32)
    eval_sets = encode_sets(inputs.eval_datasets, tokenizer, preset.model.max_length, labels)
    check_encoded_fits(loaded.model, [train_enc, *(s.encoded for s in eval_sets)], preset.model.name_or_path)
    return train_enc, eval_sets


@dataclass(frozen=True)
class Budget:
    steps_per_epoch: int
    max_steps: int
    warmup: int


def budget(preset: FinetunePreset, n_train: int, ctx: RunContext) -> Budget:
    cfg = preset.train
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    max_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else round((cfg.warmup_ratio or 0.0) * max_steps)
    if warmup and warmup >= max_steps:  # the learning rate would never reach its peak (a 40-step run at lr ~1e-7)
        raise UsageError(
            f"the warm-up ({warmup} steps) is not shorter than the run ({max_steps} steps)",
            f"pass --warmup 0.1 (10% of the run), --warmup N below {max_steps}, or --warmup 0",
        )
    return Budget(steps_per_epoch, max_steps, warmup)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """`{"hans": {"acc": .5}}` -> `{"hans.acc": .5}` (numbers only), for one metrics.jsonl line."""
    flat = {}
    for name, values in metrics.items():
        for key, value in values.items():
            if isinstance(value, int | float):
                flat[f"{name}.{key}"] = value
    return flat


def prepare_optimizer(preset: FinetunePreset, model: Any, accelerator: Any, plan: Budget) -> tuple[Any, Any, Any]:
    """AdamW over the trainable parameters and the linear warm-up/decay schedule, prepared for the device."""
    from srnet_cli.engine.loop import adamw, linear_warmup_decay

    optimizer = adamw(model, preset.train.lr, preset.train.weight_decay)
    scheduler = linear_warmup_decay(optimizer, plan.warmup, plan.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    return model, optimizer, scheduler


def evaluation_sets(preset: FinetunePreset, eval_sets: list[Any]) -> tuple[Any, list[Any]]:
    """The set that selects checkpoints (the first ID split) and the sets evaluated during training."""
    return eval_sets[0], eval_sets if preset.eval.ood_during_training else [eval_sets[0]]


def run_results(preset: FinetunePreset, inputs: Inputs, out: Path, plan: Budget, best_step: int | None,
                selection: Any, metrics: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The results fields every training command reports (the `--json` object and results.json)."""
    return {
        "command": preset.command,
        "task": inputs.task.name,
        "loss": preset.loss.kind,
        "model": preset.model.name_or_path,
        "seed": preset.train.seed,
        "out": str(out),
        "steps": plan.max_steps,
        "best_step": best_step,
        "selection": f"{selection.name}.{preset.eval.metric}",
        "metrics": metrics,
        "data": {
            "train": len(inputs.train.examples),
            "train_malformed": len(inputs.train.malformed),
            "train_rows": set_rows(inputs.train),
            **data_report(inputs.eval_datasets, inputs.missing),
        },
    }
