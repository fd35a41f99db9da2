"""`srnet bench`: srnet's training and evaluation speed against Hugging Face
`Trainer` and the original project's settings, measured in one process on this machine, printed as ratios.

Every comparison uses the same model weights, data, batch size and number of steps. A training timing covers one
whole epoch over the same examples (from the start of the first step to the end of the last), so every
configuration processes exactly the same pairs whatever order its sampler picks; an untimed warm-up run comes
first (kernel set-up for the shapes seen). Lengths follow MNLI's pair-length distribution (see
`realistic_examples`), because padding waste depends on it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from srnet_cli.engine.data.readers import Example

from srnet_cli.engine.runs.devices import ONEDNN_ISA_CAP_VARIABLES
from srnet_cli.recipes.bench.memory import peak_rss_mb
from srnet_cli.recipes.bench.probes import ROUNDS, fastest, matmul_peak_flops, training_flops
from srnet_cli.recipes.bench.runners import (
    Setup,
    original_predict,
    sized_model,
    srnet_predict,
    srnet_train,
    trainer_predict,
    trainer_train,
)
from srnet_cli.recipes.bench.structured import structured_phase
from srnet_cli.recipes.bench.workload import ORIGINAL_PAD, WARMUP_STEPS, realistic_examples

Log = Callable[[str], None]  # where progress lines go (print, or the CLI's console)


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
    structured: bool = True,
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
        "machine": machine(),
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
    if structured:
        out["structured"] = structured_phase(setup, log)
    out["ratios"] = ratios(out)
    return out


def _training_phase(
    setup: Setup, epoch: list[Example], steps: int, batch: int, out: dict, log: Log, peak_sizes: tuple[int, ...]
) -> dict:
    """srnet finetune against the Trainer as run_glue.py used it and at its best, in fp32 and (where the CPU runs it
    natively) bf16, and srnet mask-train; every timing is one epoch over the same examples. A skipped bf16 timing
    is None."""
    from srnet_cli.engine.evaluation.cpu_products import onednn_available

    with_bf16 = out["bf16"]
    precisions = ("fp32", "bf16") if with_bf16 else ("fp32",)

    def peaks_now() -> dict[str, float]:
        found = {p: matmul_peak_flops(p, peak_sizes) for p in precisions}
        if onednn_available():  # evaluation's fp32 path where faster: the machine's fp32 limit may be oneDNN's
            found["fp32_onednn"] = matmul_peak_flops("fp32", peak_sizes, onednn=True)
        return found

    peak_before = peaks_now()
    log(f"finetune and mask-train: srnet and the Trainer at its best, {ROUNDS} rounds in turn")
    dense, best, masked = fastest(
        lambda: srnet_train(setup, epoch, steps, batch),
        lambda: trainer_train(setup, epoch, steps, batch, best=True),
        lambda: srnet_train(setup, epoch, steps, batch, mask_train=True),
    )
    dense_bf16: dict | None = None
    best_bf16: dict | None = None
    masked_bf16: dict | None = None
    if with_bf16:
        log("the same in bf16")
        dense_bf16, best_bf16, masked_bf16 = fastest(
            lambda: srnet_train(setup, epoch, steps, batch, bf16=True),
            lambda: trainer_train(setup, epoch, steps, batch, best=True, bf16=True),
            lambda: srnet_train(setup, epoch, steps, batch, mask_train=True, bf16=True),
        )
    log("finetune: Trainer like run_glue.py (padding to 128; once: it is the slow one)")
    glue = trainer_train(setup, epoch, steps, batch, best=False)

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
    quickest = min(t["seconds_per_step"] for t in (dense, dense_bf16) if t is not None)
    # the machine's limit is the best it showed: measured before and after the timings, as its speed wanders
    peak_after = peaks_now()
    peaks = {name: max(rate, peak_after[name]) for name, rate in peak_before.items()}
    out["flops"] = {
        "matmul_peak_fp32": peaks["fp32"],  # torch.mm: MKL, which srnet's training uses
        "matmul_peak_fp32_onednn": peaks.get("fp32_onednn"),
        "matmul_peak_bf16": peaks.get("bf16"),
        "matmul_peak": max(peaks.values()),  # the machine's real limit
        "training_achieved": flops / (quickest * dense["steps_timed"]),  # srnet's faster precision
        "training_achieved_fp32": flops / (dense["seconds_per_step"] * dense["steps_timed"]),
    }
    return dense


def _evaluation_phase(setup: Setup, trained: nn.Module, n: int, out: dict, log: Log) -> None:
    log(
        "evaluate: srnet" + (" (fp32, bf16)" if out["bf16"] else "") + ", original settings (batch 8, padding 128), "
        "Trainer.predict"
    )
    eval_set = realistic_examples(n, seed=2)
    timings = [
        lambda: srnet_predict(setup, trained, eval_set, 128),
        lambda: original_predict(setup, trained, eval_set),
        lambda: trainer_predict(setup, trained, eval_set, 128),
    ]
    if out["bf16"]:
        timings.append(lambda: srnet_predict(setup, trained, eval_set, 128, bf16=True))
    srnet, original, trainer, *bf16 = (t["examples_per_second"] for t in fastest(*timings))
    out["evaluate"] = {
        "srnet_examples_per_s": srnet,
        "srnet_bf16_examples_per_s": bf16[0] if bf16 else None,
        "original_examples_per_s": original,
        "trainer_predict_examples_per_s": trainer,
    }


def _size_phase(setup: Setup, model: str, dense: dict, epoch: list[Example], steps: int, batch: int, log: Log) -> dict:
    """Examples/s of a tiny and a BERT-base-sized random model beside the benchmarked one."""
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, hidden, layers in (("tiny (2x128)", 128, 2), ("bert-base size (12x768, random)", 768, 12)):
            log(f"scaling: {name}")
            sized = Setup(
                sized_model(setup.model_path, setup.tokenizer, hidden, layers, Path(tmp) / name),
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
    compact = (out.get("structured") or {}).get("cpu", {})
    for level in ("0.50", "0.70"):
        if level in compact:
            every[f"compact_{level[2]}0_inference_vs_dense"] = compact[level]["speedup_b32"]
    if out["bf16"]:
        every |= {
            "finetune_bf16_vs_trainer_best_bf16": f["srnet_bf16_examples_per_s"]
            / f["trainer_best_bf16_examples_per_s"],
            "finetune_bf16_vs_fp32": f["srnet_bf16_examples_per_s"] / f["srnet_examples_per_s"],
            "mask_train_bf16_step_vs_dense_bf16": m["bf16_seconds_per_step"] / m["dense_bf16_seconds_per_step"],
            "evaluate_bf16_vs_fp32": e["srnet_bf16_examples_per_s"] / e["srnet_examples_per_s"],
        }
    return {name: every[name] for name in TARGETS if name in every}  # the targets' order


ISA_CAPS = (*ONEDNN_ISA_CAP_VARIABLES, "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")

TARGETS = {  # (target, True if higher is better)
    "finetune_vs_trainer_run_glue": (2.5, True),
    "finetune_vs_trainer_best": (1.2, True),
    "finetune_bf16_vs_trainer_best_bf16": (1.2, True),
    "finetune_bf16_vs_fp32": (1.0, True),  # bf16 is the CPU default of the demo only where it is faster
    "mask_train_step_vs_dense": (1.1, False),
    "mask_train_bf16_step_vs_dense_bf16": (1.1, False),
    "mask_train_memory_vs_dense": (1.2, False),
    "evaluate_vs_original": (4.0, True),
    "evaluate_vs_trainer_predict": (1.3, True),
    "evaluate_bf16_vs_fp32": (1.0, True),
    "training_flops_vs_matmul_peak": (0.65, True),
    "compact_50_inference_vs_dense": (1.8, True),  # batch 32, head+neuron magnitude masks
    "compact_70_inference_vs_dense": (2.5, True),
}


def machine() -> dict[str, Any]:
    """What the numbers were measured on, so that numbers of different machines are never mixed."""
    import platform

    import torch

    from srnet_cli.engine.evaluation.cpu_products import onednn_faster

    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    kinds = [name for name, flag in (("AMX", "amx_bf16"), ("AVX512-BF16", "avx512_bf16"), ("AVX2", "avx2"))
             if flag in flags]  # fmt: skip
    return {
        "cpu": model,
        "cpu_kinds": kinds,
        # the libraries' instruction-set caps, where set: with them a CPU runs as an older one would
        "isa_caps": {name: os.environ[name] for name in ISA_CAPS if os.environ.get(name)},
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "compiled": False,  # srnet runs eager PyTorch (torch.compile measured no faster on these models)
        "evaluation_fp32_products": "oneDNN" if onednn_faster() else "MKL",  # timed on this machine
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
