"""`srnet export-mask`: inspect a mask, convert it between formats, or bake it into a plain HF checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from srnet_cli.engine.runs.context import Reporter
from srnet_cli.engine.runs.files import check_file_target
from srnet_cli.engine.sparse.mask_io import MaskFile, save_bool_safetensors, save_mask_file, save_original_pt
from srnet_cli.engine.sparse.masks import mask_sparsity, sparsity_summary
from srnet_cli.errors import UsageError
from srnet_cli.recipes.subnetworks import load_mask_input, mask_labels

Format = Literal["srnet", "bool", "original"]


def inspect(path: Path, mask_file: MaskFile) -> dict[str, Any]:
    return {
        "command": "export-mask",
        "file": str(path),
        "format": mask_file.meta.get("format") or mask_file.meta.get("imported_from") or "boolean safetensors",
        **sparsity_summary(mask_file.masks),
        "per_layer": [
            {
                "name": s.name,
                "shape": list(mask_file.masks[s.name].shape),
                "numel": s.numel,
                "zeros": s.zeros,
                "sparsity": round(s.sparsity, 6),
            }
            for s in mask_sparsity(mask_file.masks)
        ],
        "stored_weights": sorted(mask_file.weights),
        "meta": {k: v for k, v in mask_file.meta.items() if k not in ("shapes", "layer_sparsity")},
    }


def convert(mask_file: MaskFile, target: Path, fmt: Format | None, overwrite: bool) -> Path:
    check_file_target(target, overwrite)  # not a directory, writable, never replaced without --overwrite
    fmt = fmt or ("original" if target.suffix in (".pt", ".bin") else "srnet")
    if fmt == "original":
        if target.suffix not in (".pt", ".bin"):
            raise UsageError(f"the original format is a torch file; {target} should end in .pt", "e.g. --to mask.pt")
        if mask_file.weights:
            raise UsageError(
                "this mask carries classifier weights the original mask.pt format cannot hold",
                "keep the srnet format, or bake the mask with --bake",
            )
        other = [k for k in mask_file.masks if not (k.startswith("bert.") or k == "classifier.weight")]
        if other:
            raise UsageError(
                f"the original project's mask.pt holds masks of a BERT (bert.* names); this mask has {other[0]}",
                "keep the srnet format (--to NAME.safetensors): every srnet command reads it, for every family",
            )
        save_original_pt(target, mask_file.masks)
    elif target.suffix != ".safetensors":
        raise UsageError(f"{fmt} masks are safetensors; {target} should end in .safetensors", "e.g. --to m.safetensors")
    elif fmt == "bool":
        if mask_file.weights:
            raise UsageError(
                "this mask carries classifier weights that a boolean mask file cannot hold",
                "keep the srnet format, or bake the mask with --bake",
            )
        save_bool_safetensors(target, mask_file.masks)
    else:
        save_mask_file(target, mask_file)
    return target


def bake(
    mask_given: str, model_name: str, out: Path, overwrite: bool, reporter: Reporter, use_mask_weights: bool = False
) -> dict[str, Any]:
    """A plain HF checkpoint (AutoModelForSequenceClassification) with the pruned weights set to zero."""
    from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, save_model_into, write_json
    from srnet_cli.engine.training.models import check_model_available

    mask_path, mask_file = load_mask_input(mask_given, None)
    assert mask_path is not None and mask_file is not None
    check_out_dir(out, overwrite, (mask_path, model_name))
    check_model_available(model_name)

    from srnet_cli.engine.sparse.masks import masks_state, unwrap
    from srnet_cli.engine.training.models import load_tokenizer
    from srnet_cli.recipes.subnetworks import masked_model

    tokenizer = load_tokenizer(model_name)
    model = masked_model(model_name, mask_path, mask_file, mask_labels(mask_file), reporter, use_mask_weights)
    summary = sparsity_summary(masks_state(model))
    unwrap(model)
    prepare_out_dir(out, overwrite, (mask_path, model_name))
    save_model_into(model, tokenizer, out)  # OUT itself is the checkpoint: from_pretrained(OUT) loads it
    results = {
        "command": "export-mask",
        "bake": True,
        "mask": str(mask_path),
        "model": model_name,
        "out": str(out),
        **summary,
    }
    write_json(out / "results.json", results)
    return results
