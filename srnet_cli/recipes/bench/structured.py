"""The speed of structured SRNets: the dense model against compact models cut from head+neuron masks at several
sparsities (magnitude masks of the benchmarked model: the shapes, not the weights, decide the speed)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from srnet_cli.recipes.bench.probes import fastest
from srnet_cli.recipes.bench.runners import Setup, fresh_model, srnet_predict, srnet_train
from srnet_cli.recipes.bench.workload import realistic_examples

if TYPE_CHECKING:
    from torch import nn

SPARSITIES = (0.3, 0.5, 0.7)


def compact_copy(setup: Setup, sparsity: float) -> tuple[nn.Module, dict]:
    """The benchmarked model cut to a head+neuron magnitude mask at `sparsity` (per layer, as IMP prunes)."""
    from srnet_cli.engine.sparse.compact import cut
    from srnet_cli.engine.sparse.groups import build_groups, magnitudes, select
    from srnet_cli.engine.sparse.masks import apply_masks, inject_masks, sparsity_summary, unwrap
    from srnet_cli.engine.sparse.structure import structure_of

    model = fresh_model(setup)
    structure = structure_of(model)
    index = build_groups(model, structure, "head+neuron")
    weights = model_weights_of(model, list(index.rows))
    keep, _ = select(index, magnitudes(index, weights), sparsity, "layer")
    masks = index.expand(keep)
    inject_masks(model, [name.removesuffix(".weight") for name in masks])
    apply_masks(model, masks)
    measured = sparsity_summary(masks)["sparsity"]
    unwrap(model)
    layout = cut(model, structure, index, keep)
    return model, {"sparsity": measured, "heads": list(layout.heads), "neurons": list(layout.neurons)}


def model_weights_of(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name] for name in names}


def _file_mb(model: nn.Module) -> float:
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        return path.stat().st_size / 2**20


def _sizes(model: nn.Module) -> dict:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "file_mb": _file_mb(model),
        "memory_mb": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
    }


INFERENCE_ROUNDS = 3  # passes per model, the models in turn; each keeps its fastest (a CPU's speed wanders)


def structured_phase(setup: Setup, log: Callable[[str], None], pairs: int = 512, steps: int = 8,
                     batch: int = 32) -> dict:  # fmt: skip
    """Dense and compact rows: parameters, file and weight memory, inference pairs/s at batch 32 and 1, and a
    retraining step; the compact rows' speed-ups against the dense row (same process, same data, the models timed
    in turn)."""
    log("structured: cutting compact models at " + ", ".join(f"{s:.0%}" for s in SPARSITIES) + " (heads and neurons)")
    models: dict[str, nn.Module] = {"dense": fresh_model(setup)}
    rows: dict[str, dict] = {"dense": _sizes(models["dense"])}
    for sparsity in SPARSITIES:
        models[f"{sparsity:.2f}"], layout = compact_copy(setup, sparsity)
        rows[f"{sparsity:.2f}"] = _sizes(models[f"{sparsity:.2f}"]) | layout
    many = realistic_examples(pairs, seed=2)
    few = realistic_examples(max(16, pairs // 8), seed=4)
    log(f"structured: inference at batch 32 and 1, {INFERENCE_ROUNDS} rounds in turn")
    for key, examples, size in (("inference_b32_pairs_per_s", many, 32), ("inference_b1_pairs_per_s", few, 1)):
        timings = [partial(srnet_predict, setup, model.eval(), examples, size) for model in models.values()]
        for row, timing in zip(rows.values(), fastest(*timings, rounds=INFERENCE_ROUNDS), strict=True):
            row[key] = timing["examples_per_second"]
    log("structured: a retraining step")
    train_set = realistic_examples(steps * batch, seed=5)
    timings = [partial(srnet_train, setup, train_set, steps, batch, model=model.train()) for model in models.values()]
    for row, timing in zip(rows.values(), fastest(*timings), strict=True):
        row["train_step_s"] = timing["seconds_per_step"]
    dense = rows["dense"]
    for key, row in rows.items():
        if key != "dense":
            row["speedup_b32"] = row["inference_b32_pairs_per_s"] / dense["inference_b32_pairs_per_s"]
            row["speedup_b1"] = row["inference_b1_pairs_per_s"] / dense["inference_b1_pairs_per_s"]
            row["train_speedup"] = dense["train_step_s"] / row["train_step_s"]
    out: dict = {"cpu": rows, "gpu_2_4": _gpu_two_four(setup, log) if torch.cuda.is_available() else None}
    return out


def _gpu_two_four(setup: Setup, log: Callable[[str], None], batch: int = 32, repeats: int = 20) -> dict:
    """On a CUDA device: the model with 2:4 magnitude masks in PyTorch's semi-structured format against dense,
    both fp16, inference at batch 32."""
    import time

    from srnet_cli.engine.data.batching import collate, encode
    from srnet_cli.engine.sparse.masks import apply_masks, inject_masks, nm_mask, to_semi_structured, unwrap
    from srnet_cli.engine.sparse.structure import structure_of

    log("structured: 2:4 semi-structured against dense on the GPU (fp16)")
    examples = realistic_examples(batch, seed=6)
    data = encode(examples, setup.tokenizer, 128, {n: i for i, n in enumerate(setup.labels)})
    inputs = {k: v.cuda() for k, v in collate(data, list(range(batch))).items() if k != "labels"}
    timings = {}
    for kind in ("dense", "2:4"):
        model = fresh_model(setup)
        if kind == "2:4":
            names = structure_of(model).targets(include_pooler=False, include_classifier=False)
            masks = {
                name: nm_mask(w.abs(), 2, 4)
                for name, w in model_weights_of(model, [f"{n}.weight" for n in names]).items()
            }
            inject_masks(model, names)
            apply_masks(model, masks)
            unwrap(model)
        model = model.half().cuda().eval()
        if kind == "2:4":
            to_semi_structured(model, list(masks))
        with torch.inference_mode():
            for _ in range(3):
                model(**inputs)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                model(**inputs)
            torch.cuda.synchronize()
        timings[kind] = batch * repeats / (time.perf_counter() - start)
    return {"dense_pairs_per_s": timings["dense"], "semi_pairs_per_s": timings["2:4"],
            "speedup": timings["2:4"] / timings["dense"], "device": torch.cuda.get_device_name(0)}  # fmt: skip
