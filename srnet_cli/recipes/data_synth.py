"""`srnet data synth`: write a built-in benchmark in the upstream file layouts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from srnet_cli.engine.data.synth_fact import SynthFactSpec, write_synth_fact
from srnet_cli.engine.data.synth_nli import SynthNliSpec, write_synth_nli
from srnet_cli.engine.data.synth_paraphrase import SynthParaphraseSpec, write_synth_paraphrase
from srnet_cli.engine.data.tasks import TASKS
from srnet_cli.engine.runs.files import prepare_out_dir, write_json

Spec = SynthNliSpec | SynthParaphraseSpec | SynthFactSpec
SPECS: dict[str, type[Spec]] = {"nli": SynthNliSpec, "paraphrase": SynthParaphraseSpec, "fact": SynthFactSpec}
WRITERS = {"nli": write_synth_nli, "paraphrase": write_synth_paraphrase, "fact": write_synth_fact}
TASK_OF = {spec.synth: name for name, spec in TASKS.items()}  # the srnet --task that reads each benchmark


def make_spec(
    task: str, train_size: int, dev_size: int, challenge: int, seed: int, shortcut: float | None = None
) -> Spec:
    """A benchmark's spec; `challenge` is HANS pairs per subcase (nli) or pairs per challenge set (paraphrase,
    fact); `shortcut=None` keeps the benchmark's own default strength."""
    spec: Spec = SPECS[task](train_size, dev_size, challenge, seed=seed)
    return spec if shortcut is None else dataclasses.replace(spec, shortcut=shortcut)


def run(task: str, out: Path, spec: Spec, overwrite: bool = False) -> dict[str, Any]:
    out = prepare_out_dir(out, overwrite)
    files = WRITERS[task](out, spec)  # type: ignore[operator]
    info = {
        "command": "data synth",
        "task": task,
        "reads_as": TASK_OF[task],
        "out": str(out),
        "files": files,
        **spec.__dict__,
    }
    write_json(out / "synth.json", info)
    return info
