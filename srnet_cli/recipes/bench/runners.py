"""The timed runs: srnet's loop and evaluation, HF `Trainer` (as run_glue.py used it and at its best), and the
original evaluation settings, on the same weights and data."""

from __future__ import annotations

import copy
import gc
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from srnet_cli.engine.data.batching import BatchStream
    from srnet_cli.engine.data.readers import Example


from srnet_cli.recipes.bench.probes import StepClock
from srnet_cli.recipes.bench.workload import ORIGINAL_EVAL_BATCH, ORIGINAL_PAD


@dataclass
class Setup:
    model_path: str
    tokenizer: PreTrainedTokenizerBase
    labels: tuple[str, ...]


def fresh_model(setup: Setup) -> PreTrainedModel:
    import torch

    from srnet_cli.engine.training.models import load_for_task

    torch.manual_seed(0)
    model, _ = load_for_task(setup.model_path, setup.labels)
    return model


def srnet_train(
    setup: Setup,
    examples: list[Example],
    steps: int,
    batch: int,
    mask_train: bool = False,
    bf16: bool = False,
    model: nn.Module | None = None,
) -> dict:
    """srnet's own loop: length-grouped batches, dynamic padding, fused AdamW; `bf16`: autocast as
    `--mixed-precision bf16` runs it; `model`: train this one instead of a fresh copy of the setup's (either way
    with srnet's CPU paths, as every command runs on a CPU)."""
    import contextlib

    import torch

    from srnet_cli.engine.data.batching import BatchStream, encode
    from srnet_cli.engine.debias.losses import make_loss
    from srnet_cli.engine.runs.context import NullReporter
    from srnet_cli.engine.runs.devices import fit_to_device
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

    model = fit_to_device(model if model is not None else fresh_model(setup), "cpu", "bf16" if bf16 else "no")
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
    `bf16`: `bf16=True`, with eager attention (PyTorch's fused CPU attention backward is slow in bf16), as srnet's
    plain attention path runs bf16. Stock transformers otherwise: the peer's model code, SDPA and dropout."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

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
        model = fresh_model(setup)
        if bf16:
            model.set_attn_implementation("eager")
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


def stock_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` that attends as transformers does by default (SDPA), for the baselines."""
    twin = copy.deepcopy(model)
    twin.set_attn_implementation("sdpa")  # type: ignore[operator]  # a PreTrainedModel's
    return twin


def original_predict(setup: Setup, model: nn.Module, examples: list[Example]) -> dict:
    """The original evaluation: file order, batch 8, every pair padded to 128, stock attention."""
    import torch

    model = stock_copy(model)

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
        trainer = Trainer(model=stock_copy(model), args=args, data_collator=DataCollatorWithPadding(setup.tokenizer))
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.predict(dataset)
    return {"examples_per_second": len(examples) / (time.perf_counter() - start)}


def sized_model(base: str, tokenizer: PreTrainedTokenizerBase, hidden: int, layers: int, where: Path) -> str:
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
