"""`srnet data synth`."""

from __future__ import annotations

from typing import Annotated

import typer

from srnet_cli.cli.common import JsonOpt, OutOpt, OverwriteOpt, emit, handles_errors, require_out, stdout
from srnet_cli.errors import UsageError

app = typer.Typer(help="Built-in benchmarks in the upstream file formats.", no_args_is_help=True)


def _summary(info: dict) -> None:
    for rel, n in info["files"].items():
        stdout.print(f"{n:>7} rows  {info['out']}/{rel}")
    stdout.print(f"next: srnet bias-model --task mnli --kind overlap --data-dir {info['out']} --out BIAS")


@app.command("synth")
@handles_errors
def synth(
    task: Annotated[str, typer.Option("--task", help="Benchmark: nli (MNLI + HANS layout).")] = "nli",
    out: OutOpt = None,
    train_size: Annotated[int, typer.Option("--train-size", min=3, help="Training pairs.")] = 8000,
    dev_size: Annotated[int, typer.Option("--dev-size", min=3, help="Pairs per dev split.")] = 1000,
    hans_per_subcase: Annotated[
        int, typer.Option("--hans-per-subcase", min=1, help="HANS pairs per subcase (12).")
    ] = 100,
    shortcut: Annotated[
        float, typer.Option("--shortcut", min=0.5, max=1.0, help="P(non-entailed training pair has low overlap).")
    ] = 0.97,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (same seed, same files).")] = 1,
    json_: JsonOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a benchmark with a planted shortcut whose strength is --shortcut.

    Example: srnet data synth --task nli --out data/synth
    """
    if task != "nli":
        raise UsageError(f"--task {task!r} has no built-in benchmark yet", "use --task nli")
    from srnet_cli.engine.synth_nli import SynthNliSpec
    from srnet_cli.recipes import data_synth

    spec = SynthNliSpec(train_size, dev_size, hans_per_subcase, shortcut, seed)
    emit(data_synth.run(task, require_out(out, "data synth"), spec, overwrite), json_, _summary)
