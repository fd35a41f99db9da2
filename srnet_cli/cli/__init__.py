"""The `srnet` Typer app: one module per command, registered here. Imports of torch happen inside commands."""

from __future__ import annotations

import typer

from srnet_cli import __version__
from srnet_cli.cli import data, presets
from srnet_cli.cli.bench import bench
from srnet_cli.cli.bias_model import bias_model
from srnet_cli.cli.boundary import SrnetGroup
from srnet_cli.cli.demo import demo
from srnet_cli.cli.evaluate import evaluate
from srnet_cli.cli.export_mask import export_mask
from srnet_cli.cli.finetune import finetune
from srnet_cli.cli.imp import imp
from srnet_cli.cli.mask_train import mask_train
from srnet_cli.cli.models import models
from srnet_cli.cli.report import report
from srnet_cli.cli.retrain import retrain
from srnet_cli.cli.tasks import tasks

app = typer.Typer(
    name="srnet",
    cls=SrnetGroup,  # the one error boundary of every command
    help="Find sparse and robust subnetworks (SRNets) of pre-trained language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("finetune")(finetune)
app.command("imp")(imp)
app.command("mask-train")(mask_train)
app.command("retrain")(retrain)
app.command("evaluate")(evaluate)
app.command("export-mask")(export_mask)
app.command("bias-model")(bias_model)
app.add_typer(data.app, name="data")
app.command("demo")(demo)
app.command("bench")(bench)
app.command("report")(report)
app.add_typer(presets.app, name="presets")
app.command("tasks")(tasks)
app.command("models")(models)


def _version(value: bool) -> None:
    if value:
        print(f"srnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Find sparse and robust subnetworks (SRNets) of pre-trained language models."""


def main() -> None:
    succeeded = False
    try:
        app()
        succeeded = True
    except SystemExit as exc:  # click ends every run with sys.exit
        succeeded = exc.code in (0, None)
        raise
    finally:
        _close_process_group(succeeded)


def _close_process_group(succeeded: bool) -> None:
    """Under torchrun/accelerate launch: tear down the process group before the interpreter exits; left to exit,
    gloo's threads can abort the process ("terminate called without an active exception", exit -6). After a
    successful run every rank first waits for the others: a rank that tears its connections down while a peer is
    still finishing aborts that peer the same way. (A failed run does not wait: its peers may never arrive.)"""
    import sys

    if "torch.distributed" not in sys.modules:  # never imported: one process, nothing to close (and no import cost)
        return
    try:
        import torch.distributed as dist
    except Exception:  # torch half-imported when a signal stopped its import: no process group can exist
        return

    if dist.is_available() and dist.is_initialized():
        if succeeded:
            dist.barrier()
        dist.destroy_process_group()
