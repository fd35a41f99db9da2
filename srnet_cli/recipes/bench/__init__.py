"""`srnet bench`: srnet's training and evaluation speed against Hugging Face
`Trainer` and the original project's settings, measured in one process on this machine, printed as ratios.

Every comparison uses the same model weights, data, batch size and number of steps. A training timing covers one
whole epoch over the same examples (from the start of the first step to the end of the last), so every
configuration processes exactly the same pairs whatever order its sampler picks; an untimed warm-up run comes
first (kernel set-up for the shapes seen). Lengths follow MNLI's pair-length distribution (see
`realistic_examples`), because padding waste depends on it.
"""

from __future__ import annotations

import gc
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from srnet_cli.engine.data.batching import BatchStream
    from srnet_cli.engine.data.readers import Example

from srnet_cli.engine.sparse.structure import config_of

Log = Callable[[str], None]  # where progress lines go (print, or the CLI's console)

WARMUP_STEPS = 8  # the untimed run before any timing
ORIGINAL_PAD = 128  # run_glue.py pads every pair to --max_seq_length 128
ORIGINAL_EVAL_BATCH = 8  # and evaluates with batch size 8


# ------------------------------------------------------------------------------------------------------------ data
def realistic_examples(n: int, seed: int) -> list[Example]:
    """Built-in NLI pairs stretched to MNLI-like lengths: premise words ~ lognormal(median 19, σ 0.55), hypothesis
    ~ lognormal(median 9.5, σ 0.45), about 22 and 11 words on average as in MNLI's training set (premises are
    extended with further generated sentences; the label is irrelevant to speed)."""
    from srnet_cli.engine.data import synth_nli
    from srnet_cli.engine.data.readers import Example, load_split

    with tempfile.TemporaryDirectory() as tmp:
        synth_nli.write_synth_nli(Path(tmp), synth_nli.SynthNliSpec(train_size=max(n, 300), dev_size=3, seed=seed))
        base = load_split("mnli", "train", Path(tmp)).examples
    rng = random.Random(seed)
    sentences = [e.text_a for e in base]

    def stretch(text: str, target: int) -> str:
        words = text.split()
        while len(words) < target:
            words += rng.choice(sentences).split()
        return " ".join(words[: max(target, 3)])

    out = []
    for i in range(n):
        e = base[i % len(base)]
        premise = stretch(e.text_a, round(rng.lognormvariate(math.log(19), 0.55)))
        hypothesis = stretch(e.text_b, round(rng.lognormvariate(math.log(9.5), 0.45)))
        out.append(Example(f"bench-{i}", premise, hypothesis, e.label, i))
    return out


# ------------------------------------------------------------------------------------------------------------ probes
class StepClock:
    """Time from the start of the first step to the end of the last, over the steps taken."""

    def __init__(self) -> None:
        self.begin: float | None = None
        self.times: list[float] = []

    def start(self, *_: object) -> None:
        if self.begin is None:
            self.begin = time.perf_counter()

    def tick(self, *_: object) -> None:
        self.times.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        assert self.begin is not None and self.times, "no step was timed"
        return (self.times[-1] - self.begin) / len(self.times)


def matmul_peak_flops(dtype: str = "fp32", sizes: tuple[int, ...] = (1024, 2048), repeats: int = 6) -> float:
    """Best square-matmul FLOP/s of this machine in fp32 or bf16 with torch's current thread count. On CPUs with
    AMX, bf16 is the real limit (several times fp32), so training FLOP/s are compared with the higher of the two."""
    import torch

    best_rate = 0.0
    for size in sizes:
        a = torch.randn(size, size, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
        b = torch.randn_like(a)
        torch.mm(a, b)  # the first call sets up kernels
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        best_rate = max(best_rate, 2 * size**3 / best)
    return best_rate


def training_flops(model: nn.Module, real_tokens: int, squared_lengths: int) -> float:
    """6 FLOPs per weight per real token for the linear layers (forward + backward), plus attention scores and
    values: 2·2·L·d·len² per example forward, times 3 (so Σ len² over examples, not (mean len)²)."""
    import torch

    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    config = config_of(model)
    return 6 * linear * real_tokens + 12 * config.num_hidden_layers * config.hidden_size * squared_lengths


# ------------------------------------------------------------------------------------------------------------ runs
@dataclass
class Setup:
    model_path: str
    tokenizer: PreTrainedTokenizerBase
    labels: tuple[str, ...]


def _fresh_model(setup: Setup) -> PreTrainedModel:
    import torch

    from srnet_cli.engine.training.models import load_for_task

    torch.manual_seed(0)
    model, _ = load_for_task(setup.model_path, setup.labels)
    return model


def srnet_train(
    setup: Setup, examples: list[Example], steps: int, batch: int, mask_train: bool = False, bf16: bool = False
) -> dict:
    """srnet's own loop: length-grouped batches, dynamic padding, fused AdamW; `bf16`: autocast as
    `--mixed-precision bf16` runs it (with the eager attention `fit_attention` picks on a CPU)."""
    import contextlib

    import torch

    from srnet_cli.engine.data.batching import BatchStream, encode
    from srnet_cli.engine.debias.losses import make_loss
    from srnet_cli.engine.runs.context import NullReporter
    from srnet_cli.engine.runs.devices import fit_attention
    from srnet_cli.engine.sparse.masks import inject_masks
    from srnet_cli.engine.sparse.pruning import init_scores
    from srnet_cli.engine.sparse.structure import structure_of
    from srnet_cli.engine.training.loop import adamw, linear_warmup_decay, train_loop

    class CpuAccelerator:  # the loop's accelerator interface, without accelerate's wrapping
        device = torch.device("cpu")

        @staticmethod
        def backward(loss: torch.Tensor) -> None:
            loss.backward()

        @staticmethod
        def clip_grad_norm_(params: Iterable[torch.Tensor], norm: float) -> None:
            torch.nn.utils.clip_grad_norm_(params, norm)

    model = fit_attention(_fresh_model(setup), "cpu", "bf16" if bf16 else "no")
    if mask_train:
        inject_masks(model, structure_of(model).targets(include_pooler=True, include_classifier=False))
        for param in model.parameters():
            param.requires_grad_(False)
        init_scores(model, 0.5, "hard")
    data = encode(examples, setup.tokenizer, ORIGINAL_PAD, {n: i for i, n in enumerate(setup.labels)})
    optimizer = adamw(model, 5e-5, 0.0)
    scheduler = linear_warmup_decay(optimizer, 0, steps)
    clock = StepClock()
    stream = BatchStream(data.lengths, batch, seed=1)
    seen: list[list[int]] = []
    recording = _Recording(stream, seen, clock)
    gc.collect()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        train_loop(
            model,
            data,
            make_loss("ce"),
            optimizer,
            scheduler,
            accelerator=CpuAccelerator(),
            stream=recording,
            max_steps=steps,
            eval_every=10**9,
            evaluate_fn=lambda step: None,
            reporter=NullReporter(),
            max_grad_norm=1.0,
            on_step=clock.tick,
        )
    timed = seen
    real = sum(data.lengths[i] for b in timed for i in b)
    squared = sum(data.lengths[i] ** 2 for b in timed for i in b)
    padded = sum(max(data.lengths[i] for i in b) * len(b) for b in timed)
    return {
        "seconds_per_step": clock.seconds_per_step(),
        "real_tokens": real,
        "padded_tokens": padded,
        "squared_lengths": squared,
        "model": model,
        "steps_timed": len(timed),
    }


class _Recording:
    """Passes batches through and remembers them (to count real and padded tokens); starts the clock."""

    def __init__(self, stream: BatchStream, seen: list[list[int]], clock: StepClock) -> None:
        self.stream, self.seen, self.clock = stream, seen, clock

    def __iter__(self) -> _Recording:
        return self

    def __next__(self) -> list[int]:
        self.clock.start()
        batch = next(self.stream)
        self.seen.append(batch)
        return batch


def trainer_train(
    setup: Setup, examples: list[Example], steps: int, batch: int, best: bool, bf16: bool = False
) -> dict:
    """HF `Trainer`, configured like `run_glue.py` (pad to 128) or at its best (dynamic padding, group_by_length);
    `bf16`: `bf16=True`, with the same eager attention srnet uses in bf16 on a CPU, so that only the loop differs."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from srnet_cli.engine.runs.devices import fit_attention

    index = {n: i for i, n in enumerate(setup.labels)}
    padding = False if best else "max_length"
    enc = setup.tokenizer(
        [e.text_a for e in examples],
        [e.text_b for e in examples],
        truncation=True,
        max_length=ORIGINAL_PAD,
        padding=padding,
    )
    columns = {k: enc[k] for k in enc.keys()} | {"labels": [index[e.label] for e in examples]}
    dataset = Dataset.from_dict(columns)
    clock = StepClock()

    class Tick(TrainerCallback):
        def on_step_begin(self, *args: object, **kwargs: object) -> None:
            clock.start()

        def on_step_end(self, *args: object, **kwargs: object) -> None:
            clock.tick()

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=batch,
            max_steps=steps,
            learning_rate=5e-5,
            max_grad_norm=1.0,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            seed=1,
            bf16=bf16,
            train_sampling_strategy="group_by_length" if best else "random",  # transformers 5: was group_by_length
        )
        collator = DataCollatorWithPadding(setup.tokenizer) if best else None
        model = fit_attention(_fresh_model(setup), "cpu", "bf16" if bf16 else "no")
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[Tick()])
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict to stdout
        gc.collect()
        trainer.train()
    return {"seconds_per_step": clock.seconds_per_step()}


def srnet_predict(setup: Setup, model: nn.Module, examples: list[Example], batch: int, bf16: bool = False) -> dict:
    import torch

    from srnet_cli.engine.data.batching import encode
    from srnet_cli.engine.training.loop import predict_logits

    data = encode(examples, setup.tokenizer, ORIGINAL_PAD, {n: i for i, n in enumerate(setup.labels)})
    gc.collect()
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        predict_logits(model, data, batch, "cpu")
    return {"examples_per_second": len(examples) / (time.perf_counter() - start)}


def original_predict(setup: Setup, model: nn.Module, examples: list[Example]) -> dict:
    """The original evaluation: file order, batch 8, every pair padded to 128."""
    import torch

    enc = setup.tokenizer(
        [e.text_a for e in examples],
        [e.text_b for e in examples],
        truncation=True,
        max_length=ORIGINAL_PAD,
        padding="max_length",
        return_tensors="pt",
    )
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(examples), ORIGINAL_EVAL_BATCH):
            model(**{k: v[i : i + ORIGINAL_EVAL_BATCH] for k, v in enc.items()})
    return {"examples_per_second": len(examples) / (time.perf_counter() - start)}


def trainer_predict(setup: Setup, model: nn.Module, examples: list[Example], batch: int) -> dict:
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    enc = setup.tokenizer(
        [e.text_a for e in examples], [e.text_b for e in examples], truncation=True, max_length=ORIGINAL_PAD
    )
    dataset = Dataset.from_dict({k: enc[k] for k in enc.keys()})
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_eval_batch_size=batch,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(setup.tokenizer))
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.predict(dataset)
    return {"examples_per_second": len(examples) / (time.perf_counter() - start)}


def _sized_model(base: str, tokenizer: PreTrainedTokenizerBase, hidden: int, layers: int, where: Path) -> str:
    """A randomly initialised BERT of the given size with the base model's tokenizer (for the size sweep)."""
    import torch
    from transformers import AutoConfig, BertConfig, BertForSequenceClassification

    vocab = AutoConfig.from_pretrained(base).vocab_size
    heads = max(2, hidden // 64)
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        num_labels=3,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(where)
    tokenizer.save_pretrained(where)
    return str(where)


def _reset_peak_rss() -> None:
    """A spawned child starts with its parent's resident pages counted in its peak; Linux resets it on request."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _phase_peak_rss(phase: str, model: str, steps: int, batch: int) -> int:
    """Run one phase in this (fresh) process and return its peak RSS in bytes."""
    _reset_peak_rss()
    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.training.models import load_tokenizer, resolve_model

    path = resolve_model(model)
    setup = Setup(path, load_tokenizer(path), task_spec("mnli").labels)
    examples = realistic_examples(steps * batch, seed=1)
    if phase == "evaluate":
        srnet_predict(setup, _fresh_model(setup), examples, 128)
    else:
        srnet_train(setup, examples, steps, batch, mask_train=phase == "mask_train")
    return _peak_rss_bytes()


def peak_rss_mb(model: str, steps: int, batch: int) -> dict[str, float]:
    """Peak memory of finetune, mask-train and evaluate, each in its own fresh process: an allocator keeps what it
    once held, so phases measured one after another in one process would inherit each other's peaks."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return {
            phase: pool.apply(_phase_peak_rss, (phase, model, steps, batch)) / 2**20
            for phase in ("finetune", "mask_train", "evaluate")
        }


# ------------------------------------------------------------------------------------------------------------ main
def run_bench(
    model: str = "minilm",
    steps: int = 20,
    batch: int = 32,
    eval_examples: int = 2000,
    sizes: bool = True,
    memory: bool = True,
    log: Log = print,
    bf16: bool | None = None,
    peak_sizes: tuple[int, ...] = (1024, 2048),
) -> dict:
    """Every measurement, as one JSON-able dict; `log` gets a line per phase. `memory` measures peak RSS in fresh
    processes (slow to start), `sizes` times a tiny and a BERT-base-sized model. `bf16` (default: whether the CPU
    runs bf16 natively) adds the bf16 timings: emulated bf16 is ~100x slower than fp32, so timing it would take most
    of an hour and tell nothing but "use fp32"."""
    import torch

    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.runs.devices import cpu_has_fast_bf16
    from srnet_cli.engine.training.models import load_tokenizer, resolve_model

    path = resolve_model(model)
    setup = Setup(path, load_tokenizer(path), task_spec("mnli").labels)
    examples = realistic_examples(2 * steps * batch, seed=1)
    lengths = [
        len(x)
        for x in setup.tokenizer(
            [e.text_a for e in examples], [e.text_b for e in examples], truncation=True, max_length=ORIGINAL_PAD
        )["input_ids"]
    ]
    out: dict[str, Any] = {
        "model": model,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "steps": steps,
        "pair_tokens": {
            "mean": sum(lengths) / len(lengths),
            "max": max(lengths),
            "truncated_at_128": sum(n >= ORIGINAL_PAD for n in lengths) / len(lengths),
        },
        "bf16": cpu_has_fast_bf16() if bf16 is None else bf16,
    }
    if not out["bf16"]:
        log("bf16 skipped: this CPU has no native bf16 (no AMX or AVX512-BF16); fp32 only")
    log("warm-up (untimed)")
    srnet_train(setup, realistic_examples(WARMUP_STEPS * batch, seed=3), WARMUP_STEPS, batch)
    dense = _training_phase(setup, examples[: steps * batch], steps, batch, out, log, peak_sizes)
    _evaluation_phase(setup, dense["model"], eval_examples, out, log)
    if memory:
        log("peak memory: finetune, mask-train, evaluate, each in a fresh process")
        out["peak_rss_mb"] = peak_rss_mb(model, WARMUP_STEPS, batch)
    log("scaling: 2x the examples")
    double = srnet_train(setup, examples, 2 * steps, batch)
    out["scaling_examples"] = {
        f"{steps * batch}": dense["seconds_per_step"] * steps,
        f"{2 * steps * batch}": double["seconds_per_step"] * 2 * steps,
    }
    if sizes:
        out["scaling_model_size"] = _size_phase(setup, model, dense, examples[: steps * batch], steps, batch, log)
    out["ratios"] = ratios(out)
    return out


def _training_phase(
    setup: Setup, epoch: list[Example], steps: int, batch: int, out: dict, log: Log, peak_sizes: tuple[int, ...]
) -> dict:
    """srnet finetune against the Trainer as run_glue.py used it and at its best, in fp32 and (where the CPU runs it
    natively) bf16, and srnet mask-train; every timing is one epoch over the same examples. A skipped bf16 timing
    is None."""
    with_bf16 = out["bf16"]

    def bf16_timing(message: str, timing: Any) -> dict | None:
        if not with_bf16:
            return None
        log(message)
        return timing()

    log("finetune: srnet")
    dense = srnet_train(setup, epoch, steps, batch)
    dense_bf16 = bf16_timing("finetune: srnet, bf16", lambda: srnet_train(setup, epoch, steps, batch, bf16=True))
    log("finetune: Trainer like run_glue.py (padding to 128)")
    glue = trainer_train(setup, epoch, steps, batch, best=False)
    log("finetune: Trainer at its best (dynamic padding, group_by_length)")
    best = trainer_train(setup, epoch, steps, batch, best=True)
    best_bf16 = bf16_timing(
        "finetune: Trainer at its best, bf16=True",
        lambda: trainer_train(setup, epoch, steps, batch, best=True, bf16=True),
    )
    log("mask-train: srnet")
    masked = srnet_train(setup, epoch, steps, batch, mask_train=True)
    masked_bf16 = bf16_timing(
        "mask-train: srnet, bf16", lambda: srnet_train(setup, epoch, steps, batch, mask_train=True, bf16=True)
    )

    def rate(timing: dict | None) -> float | None:
        return None if timing is None else batch / timing["seconds_per_step"]

    def per_step(timing: dict | None) -> float | None:
        return None if timing is None else timing["seconds_per_step"]

    out["finetune"] = {
        "srnet_examples_per_s": rate(dense),
        "srnet_bf16_examples_per_s": rate(dense_bf16),
        "trainer_run_glue_examples_per_s": rate(glue),
        "trainer_best_examples_per_s": rate(best),
        "trainer_best_bf16_examples_per_s": rate(best_bf16),
        "padding_waste": 1 - dense["real_tokens"] / dense["padded_tokens"],
    }
    out["mask_train"] = {
        "seconds_per_step": masked["seconds_per_step"],
        "dense_seconds_per_step": dense["seconds_per_step"],
        "bf16_seconds_per_step": per_step(masked_bf16),
        "dense_bf16_seconds_per_step": per_step(dense_bf16),
    }
    flops = training_flops(dense["model"], dense["real_tokens"], dense["squared_lengths"])
    fastest = min(t["seconds_per_step"] for t in (dense, dense_bf16) if t is not None)
    peaks = {"fp32": matmul_peak_flops("fp32", peak_sizes)}
    if with_bf16:
        peaks["bf16"] = matmul_peak_flops("bf16", peak_sizes)
    out["flops"] = {
        "matmul_peak_fp32": peaks["fp32"],
        "matmul_peak_bf16": peaks.get("bf16"),
        "matmul_peak": max(peaks.values()),  # the machine's real limit
        "training_achieved": flops / (fastest * dense["steps_timed"]),  # srnet's faster precision
        "training_achieved_fp32": flops / (dense["seconds_per_step"] * dense["steps_timed"]),
    }
    return dense


def _evaluation_phase(setup: Setup, trained: nn.Module, n: int, out: dict, log: Log) -> None:
    log(
        "evaluate: srnet" + (" (fp32, bf16)" if out["bf16"] else "") + ", original settings (batch 8, padding 128), "
        "Trainer.predict"
    )
    eval_set = realistic_examples(n, seed=2)
    bf16 = srnet_predict(setup, trained, eval_set, 128, bf16=True)["examples_per_second"] if out["bf16"] else None
    out["evaluate"] = {
        "srnet_examples_per_s": srnet_predict(setup, trained, eval_set, 128)["examples_per_second"],
        "srnet_bf16_examples_per_s": bf16,
        "original_examples_per_s": original_predict(setup, trained, eval_set)["examples_per_second"],
        "trainer_predict_examples_per_s": trainer_predict(setup, trained, eval_set, 128)["examples_per_second"],
    }


def _size_phase(setup: Setup, model: str, dense: dict, epoch: list[Example], steps: int, batch: int, log: Log) -> dict:
    """Examples/s of a tiny and a BERT-base-sized random model beside the benchmarked one."""
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, hidden, layers in (("tiny (2x128)", 128, 2), ("bert-base size (12x768, random)", 768, 12)):
            log(f"scaling: {name}")
            sized = Setup(
                _sized_model(setup.model_path, setup.tokenizer, hidden, layers, Path(tmp) / name),
                setup.tokenizer,
                setup.labels,
            )
            result = srnet_train(sized, epoch[: steps // 2 * batch], steps // 2, batch)
            n_params = sum(p.numel() for p in result["model"].parameters())
            sizes[name] = {"params": n_params, "examples_per_s": batch / result["seconds_per_step"]}
    sizes[model] = {
        "params": sum(p.numel() for p in dense["model"].parameters()),
        "examples_per_s": batch / dense["seconds_per_step"],
    }
    return sizes


BF16_RATIOS = (
    "finetune_bf16_vs_trainer_best_bf16",
    "finetune_bf16_vs_fp32",
    "mask_train_bf16_step_vs_dense_bf16",
    "evaluate_bf16_vs_fp32",
)


def ratios(out: dict) -> dict[str, float]:
    """The numbers the targets are stated in (the bf16 ones only where bf16 was timed)."""
    f, e, m, r = out["finetune"], out["evaluate"], out["mask_train"], out.get("peak_rss_mb")
    every = {
        "finetune_vs_trainer_run_glue": f["srnet_examples_per_s"] / f["trainer_run_glue_examples_per_s"],
        "finetune_vs_trainer_best": f["srnet_examples_per_s"] / f["trainer_best_examples_per_s"],
        "mask_train_step_vs_dense": m["seconds_per_step"] / m["dense_seconds_per_step"],
        **({"mask_train_memory_vs_dense": r["mask_train"] / r["finetune"]} if r else {}),
        "evaluate_vs_original": e["srnet_examples_per_s"] / e["original_examples_per_s"],
        "evaluate_vs_trainer_predict": e["srnet_examples_per_s"] / e["trainer_predict_examples_per_s"],
        "training_flops_vs_matmul_peak": out["flops"]["training_achieved"] / out["flops"]["matmul_peak"],
    }
    if out["bf16"]:
        every |= {
            "finetune_bf16_vs_trainer_best_bf16": f["srnet_bf16_examples_per_s"]
            / f["trainer_best_bf16_examples_per_s"],
            "finetune_bf16_vs_fp32": f["srnet_bf16_examples_per_s"] / f["srnet_examples_per_s"],
            "mask_train_bf16_step_vs_dense_bf16": m["bf16_seconds_per_step"] / m["dense_bf16_seconds_per_step"],
            "evaluate_bf16_vs_fp32": e["srnet_bf16_examples_per_s"] / e["srnet_examples_per_s"],
        }
    return {name: every[name] for name in TARGETS if name in every}  # the targets' order


TARGETS = {  # (target, True if higher is better)
    "finetune_vs_trainer_run_glue": (2.0, True),
    "finetune_vs_trainer_best": (1.1, True),
    "finetune_bf16_vs_trainer_best_bf16": (1.1, True),
    "finetune_bf16_vs_fp32": (1.0, True),  # bf16 is the CPU default of the demo only where it is faster
    "mask_train_step_vs_dense": (1.15, False),
    "mask_train_bf16_step_vs_dense_bf16": (1.15, False),
    "mask_train_memory_vs_dense": (1.3, False),
    "evaluate_vs_original": (3.0, True),
    "evaluate_vs_trainer_predict": (1.2, True),
    "evaluate_bf16_vs_fp32": (1.0, True),
    "training_flops_vs_matmul_peak": (0.5, True),
}
