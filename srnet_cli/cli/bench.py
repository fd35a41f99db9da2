"""`srnet bench`."""

from __future__ import annotations

from typing import Annotated

import typer

from srnet_cli.cli.common import JsonOpt, ModelOpt, QuietOpt, emit, stderr, stdout


def _table(result: dict) -> None:
    from rich.table import Table

    from srnet_cli.recipes.bench import TARGETS

    f, e = result["finetune"], result["evaluate"]
    table = Table(
        title=f"srnet bench · {result['model']} · {result['threads']} threads · batch {result['batch']} · "
        f"mean pair {result['pair_tokens']['mean']:.0f} tokens · {_machine(result['machine'])}",
        title_justify="left",
    )
    for col in ("measure", "ratio", "target", ""):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name, value in result["ratios"].items():
        target, higher = TARGETS[name]
        ok = value >= target if higher else value <= target
        table.add_row(
            name.replace("_", " "),
            f"{value:.2f}",
            f"{'≥' if higher else '≤'} {target}",
            "[green]ok[/]" if ok else "[red]miss[/]",
        )
    stdout.print(table)
    speeds = Table(title="examples/s", title_justify="left")
    for col in ("", "fp32", "bf16"):
        speeds.add_column(col, justify="left" if not col else "right")
    m = result["mask_train"]
    rows = {
        "finetune: srnet": (f["srnet_examples_per_s"], f["srnet_bf16_examples_per_s"]),
        "finetune: Trainer at its best": (f["trainer_best_examples_per_s"], f["trainer_best_bf16_examples_per_s"]),
        "finetune: Trainer like run_glue.py": (f["trainer_run_glue_examples_per_s"], None),
        "mask-train: srnet": (
            result["batch"] / m["seconds_per_step"],
            _per_s(result["batch"], m["bf16_seconds_per_step"]),
        ),
        "evaluate: srnet": (e["srnet_examples_per_s"], e["srnet_bf16_examples_per_s"]),
        "evaluate: original settings": (e["original_examples_per_s"], None),
        "evaluate: Trainer.predict": (e["trainer_predict_examples_per_s"], None),
    }
    for name, values in rows.items():
        speeds.add_row(name, *("-" if v is None else f"{v:.1f}" for v in values))
    stdout.print(speeds)
    flops = result["flops"]
    memory = ", ".join(f"{k} {v:.0f} MB" for k, v in result.get("peak_rss_mb", {}).items())
    bf16 = flops["matmul_peak_bf16"]
    bf16_peak = "skipped (no native bf16 on this CPU)" if bf16 is None else f"{bf16 / 1e9:.0f} GFLOP/s"
    onednn = (
        ""
        if flops.get("matmul_peak_fp32_onednn") is None
        else (f", {flops['matmul_peak_fp32_onednn'] / 1e9:.0f} (oneDNN)")
    )
    stdout.print(
        f"peak RSS: {memory}; matmul peak fp32 {flops['matmul_peak_fp32'] / 1e9:.0f} GFLOP/s (MKL){onednn}, bf16 "
        f"{bf16_peak}; srnet training achieves "
        f"{flops['training_achieved'] / 1e9:.0f} GFLOP/s (fp32: {flops['training_achieved_fp32'] / 1e9:.0f})"
    )
    for name, row in result.get("scaling_model_size", {}).items():
        stdout.print(f"size: {name}: {row['params'] / 1e6:.1f}M parameters, {row['examples_per_s']:.1f} examples/s")
    if result.get("structured"):
        _structured_table(result["structured"])


def _machine(info: dict) -> str:
    kinds = "/".join(info["cpu_kinds"]) or "no AVX2"
    products = info.get("evaluation_fp32_products")
    caps = ", ".join(f"{name}={value}" for name, value in info.get("isa_caps", {}).items())
    return (
        f"{info['cpu']} ({kinds}{', capped: ' + caps if caps else ''}), torch {info['torch']}, "
        f"{'compiled' if info['compiled'] else 'eager'}"
        + (f", evaluation fp32 products: {products}" if products else "")
    )


def _structured_table(structured: dict) -> None:
    from rich.table import Table

    table = Table(title="structured SRNets: compact models (head+neuron magnitude masks) against dense",
                  title_justify="left")  # fmt: skip
    for col in ("model", "sparsity", "params", "file MB", "pairs/s b32", "×", "pairs/s b1", "×", "train step s", "×"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, row in structured["cpu"].items():
        dense = name == "dense"
        table.add_row(
            name if dense else f"compact {float(name):.0%}",
            "0" if dense else f"{100 * row['sparsity']:.1f}%",
            f"{row['params'] / 1e6:.1f}M",
            f"{row['file_mb']:.1f}",
            f"{row['inference_b32_pairs_per_s']:.1f}",
            "" if dense else f"{row['speedup_b32']:.2f}",
            f"{row['inference_b1_pairs_per_s']:.1f}",
            "" if dense else f"{row['speedup_b1']:.2f}",
            f"{row['train_step_s']:.3f}",
            "" if dense else f"{row['train_speedup']:.2f}",
        )
    stdout.print(table)
    gpu = structured.get("gpu_2_4")
    stdout.print(
        "2:4 on the GPU: not timed (no CUDA device)"
        if gpu is None
        else f"2:4 semi-structured on {gpu['device']} (fp16, batch 32): {gpu['semi_pairs_per_s']:.0f} against "
        f"{gpu['dense_pairs_per_s']:.0f} pairs/s dense ({gpu['speedup']:.2f}x)"
    )


def _per_s(batch: int, seconds_per_step: float | None) -> float | None:
    return None if seconds_per_step is None else batch / seconds_per_step


def bench(
    model: ModelOpt = None,
    steps: Annotated[int, typer.Option("--steps", min=8, help="Timed training steps per configuration.")] = 20,
    sizes: Annotated[
        bool, typer.Option("--sizes/--no-sizes", help="Also time a tiny and a BERT-base-sized model.")
    ] = True,
    structured: Annotated[
        bool,
        typer.Option("--structured/--no-structured", help="Also time compact models cut at 30%, 50% and 70%."),
    ] = True,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Time finetune, mask-train and evaluate against HF Trainer and the original settings (ratios, one process).

    Example: srnet bench --json > bench.json   (about 5 minutes on 2 CPU cores)
    """
    from srnet_cli.recipes.bench import run_bench

    log = (lambda message: None) if quiet else (lambda message: stderr.print(f"bench: {message}", highlight=False))
    emit(run_bench(model or "minilm", steps, sizes=sizes, log=log, structured=structured), json_, _table)
