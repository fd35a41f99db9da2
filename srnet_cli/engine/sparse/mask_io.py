"""Mask files. srnet writes safetensors with one packed bitmask per masked weight; it also reads boolean
safetensors masks and the original project's `mask.pt` (loaded with `weights_only=True`).

srnet format (`srnet-mask/1`): tensor `<weight name>` = uint8[ceil(n/8)], bits in row-major order, little-endian
bit order within each byte (numpy `packbits(bitorder="little")`); metadata key `srnet` = JSON with `shapes`,
per-layer and overall sparsity, the source run and model, label names, and the names of extra tensors stored under
`weights/<param name>` (e.g. the randomly initialised classifier of a pre-trained-model search, so evaluation
reproduces the search's numbers).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import JsonValue

from srnet_cli.engine.runs.files import write_atomic
from srnet_cli.engine.sparse.masks import mask_sparsity, sparsity_summary
from srnet_cli.errors import MaskError
from srnet_cli.parsing import json_loads

FORMAT = "srnet-mask/1"
WEIGHTS_PREFIX = "weights/"


MaskMeta = dict[str, JsonValue]  # how a mask was found (command, loss, level, step, ...), stored as JSON


@dataclass
class MaskFile:
    masks: dict[str, torch.Tensor]  # weight name -> bool tensor of the weight's shape
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # extra parameters to load before masking
    meta: MaskMeta = field(default_factory=dict)
    # trained weights of the masked layers stored beside the masks (`*.weight_orig` of a torch-pruned checkpoint,
    # the original IMP's pytorch_model.bin): applied only on request, since srnet applies masks to --model's weights
    trained: dict[str, torch.Tensor] = field(default_factory=dict)


def pack(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(mask.flatten().cpu().numpy().astype(np.uint8), bitorder="little"))


def unpack(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    n = int(np.prod(shape)) if shape else 1
    bits = np.unpackbits(packed.numpy(), count=n, bitorder="little")
    return torch.from_numpy(bits.astype(bool)).reshape(shape)


def save_mask_file(path: Path, mask_file: MaskFile) -> None:
    """Write atomically (temp file + rename)."""
    from safetensors.torch import save_file

    masks = mask_file.masks
    meta = {
        "format": FORMAT,
        **mask_file.meta,
        "shapes": {name: list(m.shape) for name, m in masks.items()},
        "layer_sparsity": {s.name: round(s.sparsity, 6) for s in mask_sparsity(masks)},
        **sparsity_summary(masks),
        "weights": sorted(mask_file.weights),
    }
    tensors = {name: pack(m) for name, m in masks.items()}
    tensors |= {WEIGHTS_PREFIX + name: w.detach().cpu().contiguous() for name, w in mask_file.weights.items()}
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata={"srnet": json.dumps(meta)}))


def load_mask_file(path: Path) -> MaskFile:
    """Read srnet safetensors, boolean safetensors, or the original `mask.pt`; any problem is a `MaskError`."""
    if not path.is_file():
        raise MaskError(f"mask file {path} does not exist", "pass the masks/*.safetensors of an srnet run, or mask.pt")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    if path.suffix in (".pt", ".bin", ".pth"):
        return _load_torch(path)
    raise MaskError(f"{path}: unknown mask format {path.suffix!r}", "use .safetensors (srnet) or .pt (original)")


def _load_safetensors(path: Path) -> MaskFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get("srnet")
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise MaskError(f"{path} is not a readable safetensors file ({exc})", "re-export the mask") from exc
    try:
        meta = json_loads(raw_meta) if raw_meta else {}
    except ValueError as exc:
        raise MaskError(f"{path}: its srnet metadata is not valid JSON ({exc})", "re-export the mask") from exc
    _check_meta(meta, path)
    weights = {k.removeprefix(WEIGHTS_PREFIX): v for k, v in tensors.items() if k.startswith(WEIGHTS_PREFIX)}
    masks = {}
    for name, tensor in tensors.items():
        if name.startswith(WEIGHTS_PREFIX):
            continue
        if meta.get("format") == FORMAT:
            shape = meta.get("shapes", {}).get(name)
            if shape is None or tensor.dtype != torch.uint8 or tensor.numel() != (int(np.prod(shape)) + 7) // 8:
                raise MaskError(f"{path}: entry {name} does not match its recorded shape", "re-export the mask")
            masks[name] = unpack(tensor, tuple(shape))
        else:
            masks[name] = _as_bool(tensor, name, path)
    if not masks:
        raise MaskError(f"{path} holds no masks", "pass a mask file written by srnet or the original project")
    return MaskFile(masks, weights, meta)


def _check_meta(meta: object, path: Path) -> None:
    """The `srnet` metadata is an object, and its `shapes` maps names to lists of non-negative integers."""
    if not isinstance(meta, dict):
        raise MaskError(f"{path}: its srnet metadata is a {type(meta).__name__}, not an object", "re-export the mask")
    shapes = meta.get("shapes", {})
    if not isinstance(shapes, dict):
        raise MaskError(
            f"{path}: its recorded shapes are a {type(shapes).__name__}, not an object of layer names",
            "re-export the mask",
        )
    for name, shape in shapes.items():
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise MaskError(
                f"{path}: the recorded shape of {name} is not a list of sizes ({shape!r})", "re-export the mask"
            )
    labels = meta.get("labels")
    if labels is not None and not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise MaskError(f"{path}: its recorded labels are not a list of names ({labels!r})", "re-export the mask")


def _load_torch(path: Path) -> MaskFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the error below says it all
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" in str(exc):
            message = f"cannot read {path}: it holds Python objects, not only tensors (unpickling them could run code)"
            raise MaskError(message, "pass a mask.pt of tensors, or convert it where you trust it") from exc
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise MaskError(f"cannot read {path} as a mask ({first})", "pass a mask.pt of tensors") from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise MaskError(
            f"{path} does not hold a dict of mask tensors by weight name", "pass the original project's mask.pt"
        )
    # A torch-pruned checkpoint holds `*.weight_orig` and `*.weight_mask`; a mask.pt holds `*.weight` or
    # `*.weight_mask` 0/1 tensors.
    has_mask_keys = any(k.endswith(".weight_mask") for k in state)
    masks, trained = {}, {}
    for key, value in state.items():
        if has_mask_keys and key.endswith(".weight_orig") and isinstance(value, torch.Tensor):
            trained[key.removesuffix("_orig")] = value
        if has_mask_keys and not key.endswith(".weight_mask"):
            continue
        if not key.endswith((".weight", ".weight_mask")):
            raise MaskError(
                f"{path}: key {key} is neither `*.weight` nor `*.weight_mask`", "pass the original project's mask.pt"
            )
        masks[key.removesuffix("_mask")] = _as_bool(value, key, path)
    if not masks:
        raise MaskError(f"{path} holds no masks", "pass the original project's mask.pt")
    return MaskFile(masks, {}, {"source": str(path), "imported_from": "mask.pt"}, trained)


def _as_bool(tensor: torch.Tensor, key: str, path: Path) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise MaskError(f"{path}: entry {key} is not a tensor", "pass a file of mask tensors")
    if tensor.dtype == torch.bool:
        return tensor.clone()
    if not bool(((tensor == 0) | (tensor == 1)).all()):
        raise MaskError(f"{path}: entry {key} is not a 0/1 mask", "pass a binary mask, not weights or scores")
    return tensor != 0


def save_bool_safetensors(path: Path, masks: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in masks.items()}, str(tmp)))


def save_original_pt(path: Path, masks: dict[str, torch.Tensor]) -> None:
    """The original project's format: `{name}.weight` -> float 0/1 tensor, via torch.save."""
    write_atomic(path, lambda tmp: torch.save({k: v.float() for k, v in masks.items()}, str(tmp)))
