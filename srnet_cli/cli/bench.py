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
        f"mean pair {result['pair_tokens']['mean']:.0f} tokens",
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
    stdout.print(
        f"peak RSS: {memory}; matmul peak fp32 {flops['matmul_peak_fp32'] / 1e9:.0f} GFLOP/s, bf16 "
        f"{bf16_peak}; srnet training achieves "
        f"{flops['training_achieved'] / 1e9:.0f} GFLOP/s (fp32: {flops['training_achieved_fp32'] / 1e9:.0f})"
    )
    for name, row in result.get("scaling_model_size", {}).items():
        stdout.print(f"size: {name}: {row['params'] / 1e6:.1f}M parameters, {row['examples_per_s']:.1f} examples/s")


def _per_s(batch: int, seconds_per_step: float | None) -> float | None:
    return None if seconds_per_step is None else batch / seconds_per_step


def bench(
    model: ModelOpt = None,
    steps: Annotated[int, typer.Option("--steps", min=8, help="Timed training steps per configuration.")] = 20,
    sizes: Annotated[
        bool, typer.Option("--sizes/--no-sizes", help="Also time a tiny and a BERT-base-sized model.")
    ] = True,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Time finetune, mask-train and evaluate against HF Trainer and the original settings (ratios, one process).

    Example: srnet bench --json > bench.json   (about 5 minutes on 2 CPU cores)
    """
    from srnet_cli.recipes.bench import run_bench

    log = (lambda message: None) if quiet else (lambda message: stderr.print(f"bench: {message}", highlight=False))
    emit(run_bench(model or "minilm", steps, sizes=sizes, log=log), json_, _table)
