"""`srnet data synth`: write a built-in benchmark in the upstream file layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srnet_cli.engine.rundir import prepare_out_dir, write_json
from srnet_cli.engine.synth_nli import SynthNliSpec, write_synth_nli


def run(task: str, out: Path, spec: SynthNliSpec, overwrite: bool = False) -> dict[str, Any]:
    out = prepare_out_dir(out, overwrite)
    files = write_synth_nli(out, spec)
    info = {"command": "data synth", "task": task, "out": str(out), "files": files, **spec.__dict__}
    write_json(out / "synth.json", info)
    return info
