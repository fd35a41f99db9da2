"""Mask inputs of the recipes: find the mask a user means, and apply it to a model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from srnet_cli.engine.context import Reporter
from srnet_cli.engine.mask_files import MaskFile, load_mask_file
from srnet_cli.engine.masking import CLASSIFIER_PATTERN
from srnet_cli.errors import MaskError


def level_name(sparsity: float) -> str:
    return f"level-{sparsity:.2f}.safetensors"


def resolve_mask_path(given: str, sparsity: float | None) -> Path:
    """A mask file as given, or inside a run directory: masks/best (mask-train), masks/level-S (imp, by
    --sparsity), masks/mask (retrain); also the original layout's `mask.pt` in a directory."""
    path = Path(given).expanduser()
    if not path.is_dir():
        return path
    candidates = [path / "masks" / "best.safetensors", path / "masks" / "mask.safetensors", path / "mask.pt"]
    if sparsity is not None:
        candidates.insert(0, path / "masks" / level_name(sparsity))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    levels = sorted(p.name for p in (path / "masks").glob("level-*.safetensors"))
    hint = (
        f"this run has {', '.join(levels)}: pass --sparsity S (retrain) or the file, e.g. {path / 'masks' / levels[0]}"
        if levels
        else "pass a mask file"
    )
    raise MaskError(
        f"no mask found in {path}" + (f" for sparsity {sparsity:.2f}" if sparsity is not None else ""), hint
    )


def load_mask_input(given: str | None, sparsity: float | None) -> tuple[Path | None, MaskFile | None]:
    if not given:
        return None, None
    path = resolve_mask_path(given, sparsity)
    return path, load_mask_file(path)


def is_classifier_weight(name: str) -> bool:
    """The weight of a classifier layer (BERT `classifier`, RoBERTa `classifier.{dense,out_proj}`)."""
    return name.endswith(".weight") and re.fullmatch(CLASSIFIER_PATTERN, name.removesuffix(".weight")) is not None


def inject_mask_file(model: Any, mask_file: MaskFile, keep_classifier: bool, reporter: Reporter) -> dict[str, Any]:
    """Apply a mask to a model being (re)trained. The classifier is new and dense unless `keep_classifier`
    (the paper retrains with `--mask_classifier false`)."""
    from srnet_cli.engine.masking import inject_named, sparsity_summary

    masks = dict(mask_file.masks)
    dropped = [k for k in masks if is_classifier_weight(k)] if not keep_classifier else []
    for key in dropped:
        del masks[key]
    if dropped:
        reporter.log(f"the classifier stays dense (new head); mask entries ignored: {', '.join(dropped)}")
    if mask_file.trained:
        reporter.log(
            f"note: the mask file also holds trained weights (weight_orig) of {len(mask_file.trained)} "
            "layers; retraining starts from --model's weights (as the paper does) and ignores them"
        )
    inject_named(model, masks)
    summary = sparsity_summary(masks)
    reporter.log(
        f"masked {summary['layers']} linear layers, sparsity {summary['sparsity']:.4f} "
        f"(encoder {summary['encoder_sparsity']:.4f})"
    )
    return masks


def load_weights_into(model: Any, weights: dict[str, Any], source: Path) -> None:
    """Parameters stored with a mask (the random classifier of a pre-trained-model search)."""
    import torch

    params = dict(model.named_parameters())
    for name, value in weights.items():
        if name not in params or tuple(params[name].shape) != tuple(value.shape):
            raise MaskError(f"{source}: stored weight {name} does not fit this model", "use the mask's own model")
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise MaskError(f"{source}: stored weight {name} is not finite (NaN or inf)", "re-export the mask")
        with torch.no_grad():
            params[name].copy_(value)


def masked_model(
    name_or_path: str,
    mask_path: Path,
    mask_file: MaskFile,
    task_labels: tuple[str, ...],
    reporter: Reporter,
    use_trained: bool = False,
) -> Any:
    """A model with a mask applied for evaluation or baking. A mask searched on a pre-trained model carries the
    classifier it was searched with (and its label names): both are restored so the numbers are reproduced. A
    torch-pruned checkpoint (the original IMP's pytorch_model.bin) also holds the trained weights of the masked
    layers: with `use_trained` they replace --model's; otherwise the user is told they are not used."""
    from srnet_cli.engine.masking import inject_named
    from srnet_cli.engine.models import load_classifier

    labels = tuple(mask_file.meta.get("labels") or ()) if mask_file.weights else ()
    model = load_classifier(name_or_path, labels or None)
    if mask_file.weights:
        load_weights_into(model, mask_file.weights, mask_path)
        reporter.log(f"restored {len(mask_file.weights)} tensors stored with the mask ({', '.join(mask_file.weights)})")
    if mask_file.trained and use_trained:
        load_weights_into(model, mask_file.trained, mask_path)
        reporter.log(f"using the trained weights (weight_orig) of {len(mask_file.trained)} layers from {mask_path}")
    elif mask_file.trained:
        reporter.log(
            f"warning: {mask_path} also holds trained weights (weight_orig) of {len(mask_file.trained)} "
            f"layers; the mask is applied to the weights of {name_or_path} instead; pass "
            "--use-mask-weights to use the file's weights (the original IMP run's model)"
        )
    inject_named(model, mask_file.masks)
    return model
