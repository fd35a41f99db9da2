"""The demo's structured SRNet as a compact model: cut from its mask, checked, and timed against the dense CE model
on the ID dev set (same process, same batches)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from srnet_cli.engine.runs.context import Reporter

TIMED_BATCH = 32
REPEATS = 3  # the fastest of three passes: the other stages have finished, but a CPU's clock still wanders


def compact_speed(run_dir: Path, model_dir: Path, data_dir: Path, task: str, reporter: Reporter) -> dict[str, Any]:
    """Cut the retrained structured subnetwork (RUN/model with RUN/masks/mask.safetensors) into RUN/compact;
    inference pairs/s of it and of the dense model at `model_dir` at batch 32."""
    import torch

    from srnet_cli.engine.data.batching import encode
    from srnet_cli.engine.data.readers import load_split
    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.training.loop import predict_logits
    from srnet_cli.engine.training.models import load_classifier, load_tokenizer
    from srnet_cli.recipes import export_mask

    spec = task_spec(task)
    made = export_mask.compact(
        str(run_dir / "masks" / "mask.safetensors"), str(run_dir / "model"), run_dir / "compact", True, reporter
    )
    tokenizer = load_tokenizer(str(model_dir))
    examples = load_split(task, spec.id_splits[0], data_dir).examples
    data = encode(examples, tokenizer, 128, {name: i for i, name in enumerate(spec.labels)})
    speed = {}
    for name, path in (("dense", model_dir), ("compact", run_dir / "compact")):
        model = load_classifier(str(path)).eval()
        best = float("inf")
        with torch.inference_mode():
            for _ in range(REPEATS):
                start = time.perf_counter()
                predict_logits(model, data, TIMED_BATCH, "cpu")
                best = min(best, time.perf_counter() - start)
        speed[name] = len(examples) / best
    reporter.log(
        f"structured SRNet: {made['parameters']:,} of {made['dense_parameters']:,} parameters; "
        f"{speed['compact']:.0f} against {speed['dense']:.0f} pairs/s at batch {TIMED_BATCH}"
    )
    return {
        "out": str(run_dir / "compact"),
        "parameters": made["parameters"],
        "dense_parameters": made["dense_parameters"],
        "heads": made["heads"],
        "neurons": made["neurons"],
        "pairs_per_s": speed["compact"],
        "dense_pairs_per_s": speed["dense"],
        "speedup": speed["compact"] / speed["dense"],
    }
