"""Mask inputs of the recipes: find the mask a user means, and apply it to a model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from srnet_cli.engine.runs.context import Reporter
from srnet_cli.engine.sparse.mask_io import MaskFile, load_mask_file
from srnet_cli.engine.sparse.structure import Structure, structure_of
from srnet_cli.errors import MaskError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from srnet_cli.config.schema import MaskCfg
    from srnet_cli.engine.sparse.masks import Masks
    from srnet_cli.engine.sparse.pruning import Pattern


def level_name(sparsity: float) -> str:
    return f"level-{sparsity:.2f}.safetensors"


def resolve_mask_path(given: str, sparsity: float | None) -> Path:
    """A mask file as given, or inside a run directory: masks/best (mask-train), masks/level-S (imp, by
    --sparsity), masks/mask (retrain); also the original layout's `mask.pt` in a directory."""
    path = Path(given).expanduser()
    if not path.is_dir():
        if sparsity is not None:
            raise MaskError(
                f"--sparsity {sparsity:g} picks an IMP level in a run directory, but --mask {path} is one mask file",
                "drop --sparsity, or pass the IMP run directory",
            )
        return path
    candidates = [path / "masks" / "best.safetensors", path / "masks" / "mask.safetensors", path / "mask.pt"]
    if sparsity is not None:  # an IMP level, and nothing else: a mask-train run's best mask has its own sparsity
        candidates = [path / "masks" / level_name(sparsity)]
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


def model_structure(model: nn.Module, mask_cfg: MaskCfg) -> Structure:
    """The coverage-checked structure of a model (`mask.family`, `mask.leave_dense` as the preset says)."""
    return structure_of(model, mask_cfg.family, tuple(mask_cfg.leave_dense))


def inject_targets(model: nn.Module, mask_cfg: MaskCfg) -> tuple[Structure, list[str], Pattern]:
    """Make the paper's matrices of any mapped family maskable (the pooler and the head as the preset says; only
    the encoder's matrices for heads and neurons), and the pattern its masks take (mask.granularity)."""
    from srnet_cli.engine.sparse.groups import build_groups
    from srnet_cli.engine.sparse.masks import inject_masks
    from srnet_cli.engine.sparse.pruning import WEIGHTS, Pattern

    structure = model_structure(model, mask_cfg)
    whole = not mask_cfg.structured
    names = inject_masks(
        model, structure.targets(mask_cfg.include_pooler and whole, mask_cfg.include_classifier and whole)
    )
    if mask_cfg.structured:
        return structure, names, Pattern(groups=build_groups(model, structure, mask_cfg.granularity))
    return structure, names, Pattern(nm=mask_cfg.nm) if mask_cfg.nm else WEIGHTS


def describe_targets(structure: Structure, names: list[str], pattern: Pattern | None = None) -> str:
    """`masked 13 linear layers (bert: 2 layers x 6 matrices, pooler, head)`, for the run's log."""
    extras = [
        part for part, group in (("pooler", structure.pooler), ("head", structure.head)) if set(group) & set(names)
    ]
    per_layer = len(structure.family.matrices)
    shared = f", shared by {structure.uses} layers" if structure.uses > 1 else ""
    unit = ""
    if pattern is not None and pattern.groups is not None:
        kinds = pattern.groups.kinds
        unit = f", whole {' and '.join(f'{kinds.count(k)} {k}s' for k in dict.fromkeys(kinds))}"
    elif pattern is not None and pattern.nm is not None:
        unit = f", {pattern.name} blocks"
    return (
        f"masked {len(names)} linear layers ({structure.family.name}: {len(structure.layers)} layers x {per_layer} "
        f"matrices{shared}" + "".join(f", {e}" for e in extras) + unit + ")"
    )


def inject_mask_file(model: nn.Module, mask_file: MaskFile, mask_cfg: MaskCfg, reporter: Reporter) -> Masks:
    """Apply a mask to a model being (re)trained. The classifier is new and dense unless `mask.include_classifier`
    (the paper retrains with `--mask_classifier false`)."""
    from srnet_cli.engine.sparse.masks import inject_named, sparsity_summary

    masks = dict(mask_file.masks)
    head = {f"{name}.weight" for name in model_structure(model, mask_cfg).head}
    dropped = [k for k in masks if k in head] if not mask_cfg.include_classifier else []
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


def load_weights_into(model: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
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


def mask_labels(mask_file: MaskFile) -> tuple[str, ...]:
    """The label names a mask file records (a pre-trained-model search's classifier), or none."""
    labels = mask_file.meta.get("labels")
    return tuple(str(label) for label in labels) if isinstance(labels, list) else ()


def masked_model(
    name_or_path: str,
    mask_path: Path,
    mask_file: MaskFile,
    task_labels: tuple[str, ...],
    reporter: Reporter,
    use_trained: bool = False,
) -> nn.Module:
    """A model with a mask applied for evaluation or baking. A mask searched on a pre-trained model carries the
    classifier it was searched with (and its label names): both are restored so the numbers are reproduced. A
    torch-pruned checkpoint (the original IMP's pytorch_model.bin) also holds the trained weights of the masked
    layers: with `use_trained` they replace --model's; otherwise the user is told they are not used."""
    from srnet_cli.engine.sparse.masks import inject_named
    from srnet_cli.engine.training.models import load_classifier

    labels = mask_labels(mask_file) if mask_file.weights else ()
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
