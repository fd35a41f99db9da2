"""`srnet data synth` and `srnet data fetch`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from srnet_cli.cli.common import JsonOpt, OutOpt, OverwriteOpt, emit, require_out, stderr, stdout
from srnet_cli.engine.data.tasks import TASKS
from srnet_cli.errors import UsageError

app = typer.Typer(
    help="The paper's data (fetch) or built-in benchmarks (synth), in the upstream file formats.", no_args_is_help=True
)


def _summary(info: dict) -> None:
    for rel, n in info["files"].items():
        stdout.print(f"{n:>7} rows  {info['out']}/{rel}")
    task = info["reads_as"]
    kind = TASKS[task].bias_kinds[0]
    stdout.print(f"next: srnet bias-model --task {task} --kind {kind} --data-dir {info['out']} --out BIAS")


@app.command("synth")
def synth(
    task: Annotated[
        str,
        typer.Option("--task", help="nli (MNLI + HANS), paraphrase (QQP + PAWS) or fact (FEVER + FEVER-Symmetric)."),
    ] = "nli",
    out: OutOpt = None,
    train_size: Annotated[int, typer.Option("--train-size", min=3, max=2_000_000, help="Training pairs.")] = 8000,
    dev_size: Annotated[int, typer.Option("--dev-size", min=3, max=1_000_000, help="Pairs per dev split.")] = 1000,
    hans_per_subcase: Annotated[
        int, typer.Option("--hans-per-subcase", min=1, max=100_000, help="nli: HANS pairs per subcase (12).")
    ] = 100,
    challenge_size: Annotated[
        int,
        typer.Option(
            "--challenge-size", min=4, max=1_000_000, help="paraphrase, fact: pairs per PAWS / Symmetric set."
        ),
    ] = 800,
    shortcut: Annotated[
        float | None,
        typer.Option(
            "--shortcut",
            min=0.5,
            max=1.0,
            help="P(a training pair follows the shortcut); default 0.985 (nli), 0.97 (paraphrase), 0.95 (fact).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (same seed, same files).")] = 1,
    json_: JsonOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a benchmark with a planted shortcut whose strength is --shortcut.

    Example: srnet data synth --task nli --out data/synth
    """
    from srnet_cli.recipes import data_synth

    if task not in data_synth.SPECS:
        raise UsageError(f"--task {task!r} has no built-in benchmark", "use --task nli, paraphrase or fact")
    challenge = hans_per_subcase if task == "nli" else challenge_size
    spec = data_synth.make_spec(task, train_size, dev_size, challenge, seed, shortcut)
    emit(data_synth.run(task, require_out(out, "data synth"), spec, overwrite), json_, _summary)


def _fetched(info: dict) -> None:
    for rel, what in info["files"].items():
        stdout.print(f"{info['out']}/{rel}  {what}", highlight=False)
    stdout.print(f"next: {info['next']}", highlight=False)


@app.command("fetch")
def fetch(
    task: Annotated[str, typer.Option("--task", help="mnli (+ HANS), qqp (+ PAWS), fever (+ Symmetric), all.")] = "all",
    out: Annotated[Path | None, typer.Option("--out", help="Data directory to fill (pass it as --data-dir).")] = None,
    mirror: Annotated[
        str | None,
        typer.Option("--mirror", help="Base URL holding the files as URL/host/path (default: $SRNET_DATA_MIRROR)."),
    ] = None,
    source_dir: Annotated[
        Path | None,
        typer.Option("--source-dir", help="Folder with files already downloaded (MNLI.zip, HANS .txt, ...): verified."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again and replace files already there.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Download MNLI/HANS, QQP/PAWS and FEVER/FEVER-Symmetric, check each file's SHA-256, write the data layout.

    Example: srnet data fetch --task mnli --out data/real
    """
    import os

    from srnet_cli.engine.data.download import MIRROR_ENV
    from srnet_cli.recipes import data_fetch

    def log(message: str) -> None:
        stderr.print(f"fetch: {escape(message)}", highlight=False)

    info = data_fetch.run(
        task, require_out(out, "data fetch"), force, mirror or os.environ.get(MIRROR_ENV) or None, source_dir, log
    )
    for notice in info["notices"]:
        stderr.print(f"[yellow]note:[/] {escape(notice)}", highlight=False)
    emit(info, json_, _fetched)
