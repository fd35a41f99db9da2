"""`srnet demo`: the SRNet study (Liu et al. 2022) on the embedded model and a built-in benchmark, on a CPU.

benchmark -> bias model -> full models (CE, PoE) -> subnetworks from the fine-tuned model (IMP and mask training,
CE and PoE, each sparsity) -> subnetworks fine-tuned in isolation (lottery-ticket IMP and PoE masks, retrained) ->
subnetworks without fine-tuning (mask training on the pre-trained model) -> OOD-data upper bound -> gradual sparsity
-> table, findings, report.md, summary.json, plot. Every stage is an ordinary srnet run directory under OUT, made by
the same recipe (and shipped preset) as the CLI command, only shorter.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from srnet_cli.engine.runs.context import Reporter, RunContext
from srnet_cli.engine.runs.devices import check_device, check_precision, cpu_has_fast_bf16, runs_on_cpu
from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, write_json
from srnet_cli.engine.training.models import check_model_available
from srnet_cli.recipes import bias_learner, bias_model, data_synth
from srnet_cli.recipes.demo.compact import compact_speed
from srnet_cli.recipes.demo.findings import _row, _rows_of, findings
from srnet_cli.recipes.demo.spec import DEMO_TASKS, QUICK, DemoSpec, DemoTask, quick
from srnet_cli.recipes.demo.stages import (
    GRADUAL,
    OOD,
    STRUCTURED,
    _bias_preset,
    _job,
    _preset,
    _synth_spec,
    run_stage,
    stages,
)
from srnet_cli.recipes.demo.writing import write_report
from srnet_cli.recipes.demo_pool import run_jobs

__all__ = ["DEMO_TASKS", "GRADUAL", "OOD", "QUICK", "DemoSpec", "DemoTask", "_job", "_preset", "findings", "quick",
           "run", "run_stage", "stages"]  # fmt: skip


def run(spec: DemoSpec, out: Path, device: str, reporter: Reporter, overwrite: bool = False) -> dict[str, Any]:
    started = time.time()
    check_device(device)
    spec = _resolve_precision(spec, device)
    demo = DEMO_TASKS[spec.task]
    # Every input is checked before the first write: the output directory, the model, the benchmark's sizes, and
    # each stage's preset (seed, precision, steps), so a failed demo leaves --out as it was.
    check_out_dir(out, overwrite, (spec.model,))  # --overwrite never deletes the model it will load
    check_model_available(spec.model)
    root = out.resolve()  # every run's preset.toml names its inputs absolutely: it re-runs from any directory
    data, bias_dir = root / "data", root / "bias"
    synth = _synth_spec(spec)
    plan = stages(spec)
    total = len(plan) + 2
    kind = spec.bias_kind or demo.bias_kind
    learned = _bias_preset(spec, kind, data) if kind in ("shallow", "weak-learner") else None
    jobs = [_job(stage, i, total, spec, root, data, bias_dir / "bias.json") for i, stage in enumerate(plan, start=3)]
    out = prepare_out_dir(out, overwrite, (spec.model,)).resolve()

    reporter.log(f"1/{total} writing the built-in {spec.task} benchmark ({demo.layout})")
    data_synth.run(spec.task, data, synth)
    reporter.log(f"2/{total} training the {kind} bias model")
    if learned is not None:
        bias = bias_learner.run(learned, RunContext(bias_dir, device, reporter))
    else:
        bias = bias_model.run(demo.task, kind, data, bias_dir, reporter)

    rows = [_row(demo, "bias-only model", f"bias-only ({kind})", 0.0, "bias", bias["metrics"])]
    workers, threads = _workers(spec, device)
    if workers > 1:
        reporter.log(
            f"running {len(jobs)} stages {workers} at a time, {threads} thread(s) each (--workers 1: in order)"
        )
    done = run_jobs(jobs, run_stage, device, reporter, workers, threads)
    for stage in plan:
        if stage.reported:
            rows += _rows_of(demo, stage, done[stage.name][0])
    structured = next((stage for stage in plan if stage.section == STRUCTURED and stage.reported), None)
    compact = None
    if structured is not None and runs_on_cpu(device):
        reporter.log(f"{total}/{total} timing the compact structured SRNet against the dense CE model")
        compact = compact_speed(out / structured.name, out / "finetune-ce" / "model", data, demo.task, reporter)
    seconds = {stage.name: done[stage.name][1] for stage in plan}

    summary = {
        "command": "demo",
        "task": spec.task,
        "model": spec.model,
        "seed": spec.seed,
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.__dict__.items()},  # as JSON reads it
        "out": str(out),
        "columns": {key: f"{name}.{metric}" for key, (name, metric) in demo.columns.items()},
        "id_metric": demo.id_key,
        "ood_metric": demo.ood,
        "rows": rows,
        "findings": findings(rows, demo, spec),
        "compact": compact,
        "stage_seconds": seconds,
        "workers": workers,
        "threads_per_worker": threads,
        "seconds": round(time.time() - started, 1),
    }
    summary["report"] = write_report(out, summary)
    write_json(out / "summary.json", summary)
    return summary


def _workers(spec: DemoSpec, device: str) -> tuple[int, int]:
    """(stages at a time, torch threads each). Auto: two on a CPU with two or more threads (more training per
    second than one process on all of them: demo_pool), one on a GPU."""
    import torch

    cores = torch.get_num_threads()
    workers = spec.workers or (2 if runs_on_cpu(device) and cores >= 2 else 1)
    return workers, max(1, cores // workers)


def _resolve_precision(spec: DemoSpec, device: str) -> DemoSpec:
    """`auto`: bf16 on a CPU with native bf16 (AMX, AVX512-BF16), where autocast with eager attention runs the demo
    faster than fp32 with the same findings (CHANGELOG.md, "bf16 against fp32"); fp32 on other CPUs (emulated bf16
    is far slower) and on a GPU, as the paper.
    Checked here, before the benchmark and the bias model are written, not at the first training stage."""
    precision = spec.mixed_precision
    if precision == "auto":
        precision = "bf16" if runs_on_cpu(device) and cpu_has_fast_bf16() else "no"
    check_precision(device, precision)
    return replace(spec, mixed_precision=precision)
