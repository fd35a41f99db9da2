"""`srnet export-mask`: inspect, convert, import the original mask.pt, bake into a plain HF checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from srnet_cli.cli.common import (
    JsonOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    QuietOpt,
    UseMaskWeightsOpt,
    emit,
    stdout,
)
from srnet_cli.cli.tables import mask_table
from srnet_cli.errors import UsageError


def export_mask(
    mask: Annotated[str, typer.Argument(help="Mask file (.safetensors, original mask.pt) or a run directory.")],
    sparsity: Annotated[
        float | None, typer.Option("--sparsity", help="With an imp run directory: pick the mask of that IMP level.")
    ] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Write the mask here (.safetensors or .pt).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="srnet (packed bits) | bool | original.")] = None,
    bake: Annotated[bool, typer.Option("--bake", help="Write a plain HF checkpoint with zeros in place.")] = False,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact", help="Write a smaller, faster model: the heads and neurons a structured mask removes cut out."
        ),
    ] = False,
    semi_structured: Annotated[
        bool,
        typer.Option(
            "--semi-structured",
            help="Check a 2:4 mask exactly; on a CUDA GPU, bake it and convert the weights for sparse tensor cores.",
        ),
    ] = False,
    model: ModelOpt = None,
    use_mask_weights: UseMaskWeightsOpt = False,
    out: OutOpt = None,
    layers: Annotated[bool, typer.Option("--layers", help="Print the per-layer sparsity table.")] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Inspect a mask (sparsity per layer), convert it, or bake it into a model.

    Examples: srnet export-mask runs/mask --layers;  srnet export-mask mask.pt --to mask.safetensors;
    srnet export-mask runs/mask --bake --model runs/ce/model --out runs/baked
    """
    writes_model = [
        flag for flag, on in (("--bake", bake), ("--compact", compact), ("--semi-structured", semi_structured)) if on
    ]
    if len(writes_model) > 1:
        raise UsageError(f"{' and '.join(writes_model)} both given", "pass one: each writes a model to --out")
    _check_flags(mask, sparsity, to, format_, bool(writes_model), model, out, use_mask_weights, writes_model)
    from srnet_cli.recipes import export_mask as recipe
    from srnet_cli.recipes.subnetworks import load_mask_input

    if compact or semi_structured:
        from srnet_cli.cli.reporting import RichReporter
        from srnet_cli.engine.runs.context import NullReporter

        assert model is not None and out is not None
        reporter = NullReporter() if quiet else RichReporter()
        if compact:
            emit(recipe.compact(mask, model, out, overwrite, reporter, use_mask_weights), json_, _compact_line)
            return
        emit(recipe.semi_structured(mask, model, out, overwrite, reporter, use_mask_weights), json_, _baked_line)
        return
    if bake:
        from srnet_cli.cli.reporting import RichReporter
        from srnet_cli.engine.runs.context import NullReporter

        assert model is not None and out is not None
        results = recipe.bake(
            mask, model, out, overwrite, NullReporter() if quiet else RichReporter(), use_mask_weights
        )
        emit(results, json_, _baked_line)
        return
    path, mask_file = load_mask_input(mask, sparsity)
    assert path is not None and mask_file is not None
    info = recipe.inspect(path, mask_file)
    if to is not None:
        info["written"] = str(recipe.convert(mask_file, to, format_, overwrite))  # type: ignore[arg-type]
    if json_:
        print(json.dumps(info))
        return
    mask_table(info, layers)
    if to is not None:
        stdout.print(f"written: {info['written']}")


def _compact_line(results: dict) -> None:
    stdout.print(
        f"cut {results['mask']} out of {results['model']} into {results['out']}: {results['parameters']:,} of "
        f"{results['dense_parameters']:,} parameters (heads per layer {results['heads']}, FFN neurons "
        f"{results['neurons']}); logits match the masked model's to {results['max_logit_difference']:.1e}; "
        + (
            "loads with AutoModelForSequenceClassification.from_pretrained(OUT)"
            if results["stock_config"]
            else "loads with srnet_cli.engine.sparse.compact.load_compact(OUT), and every srnet command reads it"
        )
    )


def _baked_line(results: dict) -> None:
    stdout.print(
        f"baked {results['mask']} into {results['out']} (sparsity {100 * results['sparsity']:.2f}%); "
        "loads with AutoModelForSequenceClassification.from_pretrained(OUT)"
    )


def _check_flags(
    mask: str,
    sparsity: float | None,
    to: Path | None,
    format_: str | None,
    bake: bool,
    model: str | None,
    out: Path | None,
    use_mask_weights: bool,
    writes_model: list[str] | None = None,
) -> None:
    """Flags that contradict each other or do nothing are usage errors, not silently ignored."""
    if format_ is not None and to is None:
        raise UsageError("--format says how to write --to FILE: it needs --to", "e.g. --to mask.pt --format original")
    if sparsity is not None and not Path(mask).expanduser().is_dir():
        raise UsageError(
            f"--sparsity picks an IMP level inside a run directory; {mask} is a file",
            "pass the imp run directory with --sparsity, or the level file alone",
        )
    if format_ not in (None, "srnet", "bool", "original"):
        raise UsageError(f"--format {format_!r} is not one of srnet, bool, original", "e.g. --format srnet")
    flag = (writes_model or ["--bake"])[0]
    if bake and (model is None or out is None):
        raise UsageError(
            f"{flag} needs --model (the weights the mask applies to) and --out DIR",
            f"e.g. {flag} --model runs/ce/model --out runs/out",
        )
    if (model is not None or out is not None or use_mask_weights) and not bake:
        raise UsageError(
            "--model, --out and --use-mask-weights are only used with --bake, --compact or --semi-structured",
            "add one of them, or use --to FILE to convert",
        )
    if bake and to is not None:
        raise UsageError(f"--to converts a mask; {flag} writes a model to --out", "pass one of them")
