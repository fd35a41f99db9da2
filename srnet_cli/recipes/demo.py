"""`srnet demo`: the dense half of the SRNet study on the embedded model, end to end, in a few minutes on CPU.

synth NLI data -> overlap bias model -> fine-tune CE -> fine-tune PoE -> evaluate both -> summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srnet_cli.config.loader import find_preset, read_preset_file, validate
from srnet_cli.engine.context import Reporter, RunContext
from srnet_cli.engine.devices import check_device
from srnet_cli.engine.rundir import prepare_out_dir, write_json
from srnet_cli.engine.synth_nli import SynthNliSpec
from srnet_cli.recipes import bias_model, data_synth, evaluate, finetune

LOSS_NAMES = {"ce": "CE", "poe": "PoE"}


@dataclass(frozen=True)
class DemoSpec:
    model: str = "minilm"
    steps: int = 250  # one epoch of the 8,000 generated pairs at batch 32
    train_size: int = 8000
    dev_size: int = 1000
    hans_per_subcase: int = 100
    seed: int = 1


def _finetune_preset(loss: str, spec: DemoSpec, data: Path, bias: Path | None) -> Any:
    """The shipped preset at demo scale: paper lr, batch, clipping; fewer steps, 10% warm-up, 3 evaluations."""
    raw = read_preset_file(find_preset("finetune", f"{loss}-mnli"))
    raw["model"]["name_or_path"] = spec.model
    raw["data"] = {"dir": str(data)}
    raw["train"].pop("warmup_steps", None)
    raw["train"].update(max_steps=spec.steps, warmup_ratio=0.1, seed=spec.seed)
    raw["eval"].update(every=-(-spec.steps // 3), batch_size=256)  # ceil: the last evaluation is the last step
    if bias is not None:
        raw["loss"]["bias"] = str(bias)
    return validate("finetune", raw)


def run(spec: DemoSpec, out: Path, device: str, reporter: Reporter, overwrite: bool = False) -> dict[str, Any]:
    started = time.time()
    check_device(device)
    out = prepare_out_dir(out, overwrite)
    data, bias_dir = out / "data", out / "bias"

    reporter.log("1/5 writing the built-in NLI benchmark (MNLI + HANS layout, planted overlap shortcut)")
    synth_spec = SynthNliSpec(spec.train_size, spec.dev_size, spec.hans_per_subcase, seed=spec.seed)
    data_synth.run("nli", data, synth_spec)
    reporter.log("2/5 training the overlap bias model")
    bias = bias_model.run("mnli", "overlap", data, bias_dir, reporter)

    runs: dict[str, dict[str, Any]] = {}
    for i, loss in enumerate(("ce", "poe"), start=3):
        reporter.log(f"{i}/5 fine-tuning {spec.model} with {LOSS_NAMES[loss]}")
        preset = _finetune_preset(loss, spec, data, bias_dir / "bias.json" if loss == "poe" else None)
        runs[loss] = finetune.run(preset, RunContext(out / f"finetune-{loss}", device, spec.seed, reporter))

    reporter.log("5/5 evaluating both models on MNLI-m, MNLI-mm and HANS")
    rows = {"bias-only (overlap)": bias["metrics"]}
    for loss, result in runs.items():
        eval_preset = validate("evaluate", {"task": "mnli", "model": {"name_or_path": result["out"] + "/model"},
                                            "data": {"dir": str(data)}, "eval": {"batch_size": 256}})  # fmt: skip
        evaluated = evaluate.run(eval_preset, RunContext(out / f"evaluate-{loss}", device, spec.seed, reporter))
        rows[f"{LOSS_NAMES[loss]} fine-tuned"] = evaluated["metrics"]

    summary = {
        "command": "demo",
        "model": spec.model,
        "seed": spec.seed,
        "steps": spec.steps,
        "out": str(out),
        "rows": {name: _row(m) for name, m in rows.items()},
        "hans_gain_poe_over_ce": rows["PoE fine-tuned"]["hans"]["acc"] - rows["CE fine-tuned"]["hans"]["acc"],
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "summary.json", summary)
    return summary


def _row(metrics: dict[str, Any]) -> dict[str, float]:
    hans = metrics["hans"]
    return {
        "mnli_m": metrics["dev_matched"]["acc"],
        "mnli_mm": metrics["dev_mismatched"]["acc"],
        "hans": hans["acc"],
        "hans_entailed": hans["entailed_acc"],
        "hans_non_entailed": hans["non_entailed_acc"],
    }
