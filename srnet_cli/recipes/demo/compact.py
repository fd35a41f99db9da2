"""The demo's structured SRNet, retrained as a compact model, timed against the dense CE model on the ID dev set
(same process, same batches)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from srnet_cli.engine.runs.context import Reporter
from srnet_cli.errors import MaskError

TIMED_BATCH = 32
REPEATS = 3  # the fastest of three passes: the other stages have finished, but a CPU's clock still wanders


def compact_speed(run_dir: Path, model_dir: Path, data_dir: Path, task: str, reporter: Reporter) -> dict[str, Any]:
    """Inference pairs/s of the compact structured subnetwork at RUN/model (retrained with --compact) and of the
    dense model at `model_dir`, at batch 32."""
    import torch

    from srnet_cli.engine.data.batching import encode
    from srnet_cli.engine.data.readers import load_split
    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.sparse.compact import read_layout
    from srnet_cli.engine.training.loop import predict_logits
    from srnet_cli.engine.training.models import load_for_prediction, load_tokenizer

    spec = task_spec(task)
    layout = read_layout(run_dir / "model")
    if layout is None:
        raise MaskError(f"{run_dir / 'model'} is not a compact model", "retrain the structured mask with --compact")
    tokenizer = load_tokenizer(str(model_dir))
    examples = load_split(task, spec.id_splits[0], data_dir).examples
    data = encode(examples, tokenizer, 128, {name: i for i, name in enumerate(spec.labels)})
    speed, parameters = {}, {}
    for name, path in (("dense", model_dir), ("compact", run_dir / "model")):
        model = load_for_prediction(str(path), "cpu", "no").eval()  # as `srnet evaluate` runs it
        parameters[name] = sum(p.numel() for p in model.parameters())
        best = float("inf")
        with torch.inference_mode():
            for _ in range(REPEATS):
                start = time.perf_counter()
                predict_logits(model, data, TIMED_BATCH, "cpu")
                best = min(best, time.perf_counter() - start)
        speed[name] = len(examples) / best
    reporter.log(
        f"structured SRNet: {parameters['compact']:,} of {parameters['dense']:,} parameters; "
        f"{speed['compact']:.0f} against {speed['dense']:.0f} pairs/s at batch {TIMED_BATCH}"
    )
    return {
        "out": str(run_dir / "model"),
        "parameters": parameters["compact"],
        "dense_parameters": parameters["dense"],
        "heads": list(layout.heads),
        "neurons": list(layout.neurons),
        "pairs_per_s": speed["compact"],
        "dense_pairs_per_s": speed["dense"],
        "speedup": speed["compact"] / speed["dense"],
    }
