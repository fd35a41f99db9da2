"""`srnet export-mask`: inspect a mask, convert it between formats, or bake it into a plain HF checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from srnet_cli.engine.runs.context import Reporter
from srnet_cli.engine.runs.files import check_file_target
from srnet_cli.engine.sparse.mask_io import MaskFile, save_bool_safetensors, save_mask_file, save_original_pt
from srnet_cli.engine.sparse.masks import mask_sparsity, sparsity_summary
from srnet_cli.errors import UsageError
from srnet_cli.recipes.subnetworks import load_mask_input, mask_labels

if TYPE_CHECKING:
    from transformers import PreTrainedModel

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


def compact(
    mask_given: str, model_name: str, out: Path, overwrite: bool, reporter: Reporter, use_mask_weights: bool = False
) -> dict[str, Any]:
    """A physically smaller model: the heads and neurons a structured mask removes are cut out of every matrix.
    Its logits are checked against the masked model's before anything is written."""

    from srnet_cli.engine.runs.files import check_out_dir, prepare_out_dir, write_json
    from srnet_cli.engine.sparse.compact import cut_masked, save_compact
    from srnet_cli.engine.sparse.masks import masks_state
    from srnet_cli.engine.training.models import check_model_available, load_tokenizer
    from srnet_cli.recipes.subnetworks import masked_model

    mask_path, mask_file = load_mask_input(mask_given, None)
    assert mask_path is not None and mask_file is not None
    check_out_dir(out, overwrite, (mask_path, model_name))
    check_model_available(model_name)
    tokenizer = load_tokenizer(model_name)
    model = masked_model(model_name, mask_path, mask_file, mask_labels(mask_file), reporter, use_mask_weights).eval()
    summary = sparsity_summary(masks_state(model))
    dense_params = sum(p.numel() for p in model.parameters())
    layout, gap = cut_masked(model)
    prepare_out_dir(out, overwrite, (mask_path, model_name))
    meta = {"mask": str(mask_path), "model": model_name, "sparsity": summary["sparsity"]}
    save_compact(cast("PreTrainedModel", model), tokenizer, out, layout, meta)
    results = {
        "command": "export-mask",
        "compact": True,
        "mask": str(mask_path),
        "model": model_name,
        "out": str(out),
        "heads": list(layout.heads),
        "neurons": list(layout.neurons),
        "parameters": sum(p.numel() for p in model.parameters()),
        "dense_parameters": dense_params,
        "stock_config": layout.stock,
        "max_logit_difference": gap,
        **summary,
    }
    write_json(out / "results.json", results)
    return results


def semi_structured_check(mask_file: MaskFile) -> dict[str, Any]:
    """Whether every masked matrix holds an N:M pattern GPUs accelerate (2:4), exactly, and whether this machine
    can convert it (`torch.sparse.to_sparse_semi_structured` needs a CUDA device)."""
    import torch

    from srnet_cli.engine.sparse.masks import is_nm

    broken = [name for name, mask in mask_file.masks.items() if mask.dim() != 2 or not is_nm(mask, 2, 4)]
    if broken:
        raise UsageError(
            f"{broken[0]} (and {len(broken) - 1} more) is not a 2:4 mask",
            "search with --set mask.granularity=2:4 --sparsity 0.5",
        )
    if not torch.cuda.is_available():
        raise UsageError(
            "every matrix is exactly 2:4, but converting it needs a CUDA GPU "
            "(torch.sparse.to_sparse_semi_structured) and this machine has none",
            "run the same command on a GPU machine; bake the mask (--bake) for a dense checkpoint here",
        )
    return {"pattern": "2:4", "matrices": len(mask_file.masks), "cuda": torch.cuda.get_device_name(0)}


def semi_structured(
    mask_given: str, model_name: str, out: Path, overwrite: bool, reporter: Reporter, use_mask_weights: bool = False
) -> dict[str, Any]:
    """A 2:4 mask baked into a checkpoint whose weights convert to PyTorch's semi-structured format on a GPU; the
    pattern is checked exactly, and the conversion done once, before the command reports success."""
    from srnet_cli.engine.sparse.masks import to_semi_structured
    from srnet_cli.engine.training.models import load_classifier

    _, mask_file = load_mask_input(mask_given, None)
    assert mask_file is not None
    semi = semi_structured_check(mask_file)  # before anything is written
    results = bake(mask_given, model_name, out, overwrite, reporter, use_mask_weights)
    semi["converted"] = to_semi_structured(load_classifier(str(out)), sorted(mask_file.masks))
    return results | {"semi_structured": semi}
