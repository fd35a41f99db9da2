"""`srnet presets list|show`."""

from __future__ import annotations

from typing import Annotated

import typer

from srnet_cli.cli.common import JsonOpt, stdout
from srnet_cli.config.loader import list_presets, presets_root, read_preset_file
from srnet_cli.errors import UsageError

app = typer.Typer(help="The shipped presets.", no_args_is_help=True)


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """List shipped presets as COMMAND/NAME with their description."""
    rows = [(c, n, read_preset_file(p).get("description", "")) for c, n, p in list_presets()]
    if json_:
        import json

        print(json.dumps([{"command": c, "name": n, "description": d} for c, n, d in rows]))
        return
    from rich.table import Table

    table = Table(title=f"presets in {presets_root()}", title_justify="left")
    table.add_column("preset")
    table.add_column("description")
    for c, n, d in rows:
        table.add_row(f"{c}/{n}", d)
    stdout.print(table)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="COMMAND/NAME, e.g. finetune/poe-mnli.")]) -> None:
    """Print a shipped preset file."""
    matches = [p for c, n, p in list_presets() if f"{c}/{n}" == name or n == name]
    if not matches:
        raise UsageError(f"no shipped preset {name!r}", "see `srnet presets list`")
    if len(matches) > 1:
        raise UsageError(f"{name!r} names several presets", "write it as COMMAND/NAME")
    print(matches[0].read_text(encoding="utf-8"), end="")
