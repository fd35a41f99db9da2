"""`srnet models`: the encoder families srnet can mask, with the matrices of one layer and what is left dense."""

from __future__ import annotations

import json

from srnet_cli.cli.common import JsonOpt, stdout
from srnet_cli.engine.sparse.structure import describe


def models(json_: JsonOpt = False) -> None:
    """List the encoder families (by config.model_type): each layer's masked matrices and their roles, the pooler,
    the classification head, and the linears left dense with the reason."""
    rows = describe()
    if json_:
        print(json.dumps({"families": rows}))
        return
    from rich.table import Table

    table = Table(title="encoder families (config.model_type)", title_justify="left", show_lines=True)
    for column in ("family", "model types", "matrices per layer: roles", "pooler", "head", "left dense"):
        table.add_column(column)
    for r in rows:
        roles = "\n".join(f"{role}: {where}" for role, where in r["roles"].items())
        table.add_row(
            r["family"] + (" (shared layers)" if r["shared_layers"] else ""),
            ", ".join(r["model_types"]),
            f"{r['matrices_per_layer']} matrices in {r['layer']}\n{roles}",
            ", ".join(r["pooler"]) or "-",
            ", ".join(r["head"]),
            "\n".join(r["left_dense"]) or "-",
        )
    stdout.print(table)
