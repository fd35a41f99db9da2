"""What a training run reports as it goes and at its end: metrics.jsonl lines (and the experiment tracker), and
the results fields every training command shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srnet_cli.config.schema import FinetunePreset
from srnet_cli.dicts import flat_metrics
from srnet_cli.engine.evaluation.metrics import Metrics
from srnet_cli.engine.evaluation.predict import EvalSet
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.distributed import is_main
from srnet_cli.engine.runs.files import append_jsonl
from srnet_cli.engine.runs.tracking import Tracker
from srnet_cli.recipes.budget import Budget
from srnet_cli.recipes.eval_data import data_report, set_rows
from srnet_cli.recipes.inputs import Inputs
from srnet_cli.recipes.results import RunResults

if TYPE_CHECKING:
    from accelerate import Accelerator


PLAIN_KEYS = ("epoch", "level", "sparsity", "target_sparsity")  # tracker names kept as they are (others: eval/...)


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
        values = {
            key if key in PLAIN_KEYS else f"eval/{key}": value
            for key, value in line.items()
            if key != "step"
            and not key.endswith(".n")
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        }
        self.tracker.log(values, line["step"])

    def finish(self, results: RunResults, step: int) -> None:
        """The final evaluation's numbers (`final/<set>.<metric>`), then the tracker is closed."""
        self.tracker.log(
            {f"final/{k}": v for k, v in flat_metrics(results.metrics).items() if not k.endswith(".n")}, step
        )
        self.tracker.finish()


def open_metrics_log(preset: FinetunePreset, ctx: RunContext, out: Path, accelerator: Accelerator) -> MetricsLog:
    """After `start_run`: the tracker logs the resolved preset as hyperparameters, named after the run directory."""
    main = is_main(accelerator)
    return MetricsLog(out, Tracker(ctx.log_with, out, preset.model_dump(mode="json"), main), main)


def run_results(
    preset: FinetunePreset,
    inputs: Inputs,
    out: Path,
    plan: Budget,
    best_step: int | None,
    selection: EvalSet,
    metrics: Metrics,
) -> RunResults:
    """The results fields every training command reports (the `--json` object and results.json)."""
    return RunResults(
        command=preset.command,
        task=inputs.task.name,
        loss=preset.loss.kind,
        model=preset.model.name_or_path,
        seed=preset.train.seed,
        out=str(out),
        steps=plan.max_steps,
        best_step=best_step,
        selection=f"{selection.name}.{preset.eval.metric}",
        metrics=metrics,
        data={
            "train": len(inputs.train.examples),
            "train_malformed": len(inputs.train.malformed),
            "train_rows": set_rows(inputs.train),
            **data_report(inputs.eval_datasets, inputs.missing),
        },
    )
