"""Compact models: a structured subnetwork with its removed heads and neurons cut out of every matrix, so it is
physically smaller and faster, not a dense model full of zeros.

A removed head's rows of Q, K and V and its columns of the attention output, and a removed neuron's rows of the FFN
input (and gate) and its column of the FFN output, are sliced away; each attention module is told its new head
count. Because a removed unit's output was multiplied by zero columns in the masked model, the compact model's
logits equal the masked model's. The kept structure is recorded in `srnet_compact.json`; `load_compact` rebuilds
the shapes from the config and loads the weights. Where the result fits the family's stock config (every head kept,
the same FFN width in every layer) the config's FFN width is updated instead and the folder is a plain
Hugging Face model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from srnet_cli.engine.sparse.groups import GroupIndex, build_groups
from srnet_cli.engine.sparse.structure import Structure, structure_of
from srnet_cli.errors import MaskError, UsageError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

COMPACT_FILE = "srnet_compact.json"
FORMAT = "srnet-compact/1"
HEAD_COUNT_ATTRS = ("num_attention_heads", "num_heads", "n_heads")  # what attention modules read their heads from
# families whose attention reads its head count from its own module, so layers may keep different numbers of heads
# (verified by the logits test of every family); the others (DeBERTa v1's per-head biases, MPNet's shared relative
# position bias, ModernBERT's config-sized attention) lose FFN neurons only
HEADS_REMOVABLE = ("bert", "deberta-v2", "distilbert", "albert")
FFN_CONFIG_KEY = {"distilbert": "hidden_dim"}  # the config key of the FFN width, where it is not intermediate_size


@dataclass(frozen=True)
class CompactLayout:
    """What a compact model kept: heads and FFN neurons per mapped layer."""

    family: str
    head_size: int
    num_heads: int  # the config's heads per layer
    heads: tuple[int, ...]
    neurons: tuple[int, ...]

    @property
    def stock(self) -> bool:
        """Fits the family's stock config: no head removed, one FFN width."""
        return len(set(self.neurons)) == 1 and all(h == self.num_heads for h in self.heads)


def _slice(linear: nn.Linear, rows: torch.Tensor, cols: torch.Tensor) -> nn.Linear:
    out = nn.Linear(int(cols.sum()), int(rows.sum()), bias=linear.bias is not None)
    out = out.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        out.weight.copy_(linear.weight[rows][:, cols])
        if linear.bias is not None:
            out.bias.copy_(linear.bias[rows])
    return out


def cut(model: nn.Module, structure: Structure, index: GroupIndex, keep: torch.Tensor) -> CompactLayout:
    """Slice the removed groups out of every encoder matrix of `model` (plain `nn.Linear`s) in place."""
    heads_removed = any(kind == "head" and not bool(k) for kind, k in zip(index.kinds, keep, strict=True))
    if heads_removed and structure.family.name not in HEADS_REMOVABLE:
        raise MaskError(
            f"srnet cannot cut heads out of a {structure.family.name} model yet (its attention sizes per-head "
            "parameters from the config, one number for every layer); FFN neurons it can",
            "search with --set mask.granularity=neuron for a compact model, or bake the mask (export-mask --bake)",
        )
    extended = torch.cat([keep.to(torch.bool).cpu(), torch.ones(1, dtype=torch.bool)])
    for name in index.rows:
        module_name = name.removesuffix(".weight")
        parent, _, child = module_name.rpartition(".")
        holder = model.get_submodule(parent)
        linear = getattr(holder, child)
        if type(linear) is not nn.Linear:
            raise MaskError(f"{module_name} still carries a mask", "bake the mask before cutting")
        rows = extended[index.rows[name]].to(linear.weight.device)
        cols = extended[index.cols[name]].to(linear.weight.device)
        setattr(holder, child, _slice(linear, rows, cols))
    heads, neurons = [], []
    for li, layer in enumerate(structure.layers):
        members = [g for g in range(index.count) if index.layers[g] == li]
        kept_heads = sum(1 for g in members if index.kinds[g] == "head" and bool(keep[g]))
        all_heads = sum(1 for g in members if index.kinds[g] == "head")
        kept_neurons = sum(1 for g in members if index.kinds[g] == "neuron" and bool(keep[g]))
        heads.append(kept_heads if all_heads else structure.num_heads)
        neurons.append(kept_neurons if any(index.kinds[g] == "neuron" for g in members) else structure.ffn_size)
        head_rows = torch.repeat_interleave(
            torch.tensor([bool(keep[g]) for g in members if index.kinds[g] == "head"] or [True] * structure.num_heads),
            structure.head_size,
        )
        for dense_name in structure.dense:  # per-head projections left dense (DeBERTa's position projections)
            linear = model.get_submodule(dense_name)
            if dense_name.startswith(f"{layer.prefix}.") and isinstance(linear, nn.Linear) and all_heads:
                if linear.out_features == len(head_rows) and not bool(head_rows.all()):
                    parent, _, child = dense_name.rpartition(".")
                    cols = torch.ones(linear.in_features, dtype=torch.bool)
                    setattr(model.get_submodule(parent), child, _slice(linear, head_rows, cols))
        for _, module in model.get_submodule(layer.prefix).named_modules():
            for attr in HEAD_COUNT_ATTRS:
                if isinstance(getattr(module, attr, None), int):
                    setattr(module, attr, heads[-1])
            if isinstance(getattr(module, "all_head_size", None), int):
                module.all_head_size = heads[-1] * structure.head_size
    return CompactLayout(structure.family.name, structure.head_size, structure.num_heads, tuple(heads), tuple(neurons))


LAYOUT_ATTR = "srnet_compact_record"  # a compact model in memory carries its COMPACT_FILE record, to save it along


def cut_masked(model: nn.Module) -> tuple[CompactLayout, float]:
    """Bake the masks of a model whose masks remove whole heads and neurons, and cut those out in place; the cut
    model's logits are checked against the masked model's on a probe batch. Returns the layout and that gap."""
    from srnet_cli.engine.sparse.masks import masks_state, unwrap
    from srnet_cli.engine.sparse.structure import is_encoder_weight

    masks = masks_state(model)
    outside = [k for k, m in masks.items() if not is_encoder_weight(k) and not bool(m.all())]
    if outside:
        raise UsageError(
            f"the mask prunes {outside[0]}, which is not part of a head or neuron",
            "a compact model removes whole heads and neurons: search with --set mask.granularity=head+neuron",
        )
    structure = structure_of(model)
    index = build_groups(model, structure, "head+neuron")
    keep = index.keep_of({k: masks[k] for k in index.rows})
    config = getattr(model, "config", None)
    probe = torch.randint(5, int(getattr(config, "vocab_size", 100)), (2, 16), device=next(model.parameters()).device)
    was_training = model.training
    model.eval()  # dropout off for the comparison
    with torch.no_grad():
        before = model(input_ids=probe).logits
        unwrap(model)
        layout = cut(model, structure, index, keep)
        after = model(input_ids=probe).logits
    model.train(was_training)
    gap = float((before - after).abs().max())
    if gap > 1e-4:  # a slicing that does not reproduce the masked model is never used
        raise UsageError(f"the cut model's logits differ from the masked model's by {gap:.2e}", "report this bug")
    return layout, gap


def carry_layout(model: nn.Module, layout: CompactLayout, meta: dict) -> None:
    """Attach the COMPACT_FILE record to a compact model, so that every save of it writes the file too."""
    setattr(model, LAYOUT_ATTR, {"format": FORMAT, **asdict(layout), **meta})


def write_carried_layout(model: nn.Module, out: Path) -> None:
    """Write the record a compact model carries (no-op for any other model) into a saved model folder."""
    record = getattr(model, LAYOUT_ATTR, None)
    if record is not None:
        (out / COMPACT_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def first_units(index: GroupIndex, layout: CompactLayout) -> torch.Tensor:
    """The keep-vector that keeps each layer's first `heads[l]` heads and `neurons[l]` neurons (to rebuild a compact
    model's shapes from a full-size one before its weights are loaded)."""
    keep = torch.zeros(index.count, dtype=torch.bool)
    seen: dict[tuple[int, str], int] = {}
    for g in range(index.count):
        key = (index.layers[g], index.kinds[g])
        limit = (layout.heads if index.kinds[g] == "head" else layout.neurons)[index.layers[g]]
        keep[g] = seen.get(key, 0) < limit
        seen[key] = seen.get(key, 0) + 1
    return keep


def save_compact(model: PreTrainedModel, tokenizer, out: Path, layout: CompactLayout, meta: dict) -> None:
    """The compact model in safetensors with its config and tokenizer; the kept structure in COMPACT_FILE (or, for
    a stock-shaped result, the config's FFN width)."""
    out.mkdir(parents=True, exist_ok=True)
    if layout.stock:
        setattr(model.config, FFN_CONFIG_KEY.get(model.config.model_type, "intermediate_size"), layout.neurons[0])
    else:
        carry_layout(model, layout, meta)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_carried_layout(model, out)


def read_layout(path: Path) -> CompactLayout | None:
    found = read_record(path)
    return None if found is None else found[0]


def read_record(path: Path) -> tuple[CompactLayout, dict] | None:
    """The layout in a model folder's COMPACT_FILE and the rest of its record (where the model came from); None
    for a folder without one."""
    file = path / COMPACT_FILE
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')!r}")
        layout = CompactLayout(record["family"], int(record["head_size"]), int(record["num_heads"]),
                               tuple(record["heads"]), tuple(record["neurons"]))  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise MaskError(f"{file} cannot be read ({exc})", "export the compact model again") from exc
    return layout, {k: v for k, v in record.items() if k not in ("format", *asdict(layout))}


def load_compact(path: str | Path) -> PreTrainedModel:
    """A compact model saved by `srnet export-mask --compact`: `srnet_cli.engine.sparse.compact.load_compact(DIR)`
    (srnet's commands call it for any model folder that holds srnet_compact.json)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = Path(path)
    found = read_record(path)
    if found is None:
        raise MaskError(f"{path} holds no {COMPACT_FILE}", "load it with AutoModelForSequenceClassification")
    layout, meta = found
    config = AutoConfig.from_pretrained(path)
    model = cast("PreTrainedModel", AutoModelForSequenceClassification.from_config(config))
    structure = structure_of(model)
    index = build_groups(model, structure, "head+neuron")
    cut(model, structure, index, first_units(index, layout))
    state: dict[str, torch.Tensor] = {}
    for file in sorted(path.glob("*.safetensors")):
        state |= load_file(str(file))
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed = set(getattr(model, "_tied_weights_keys", None) or ())
    if unexpected or [k for k in missing if k not in allowed]:
        raise MaskError(
            f"{path} does not match its {COMPACT_FILE} (missing {missing[:2]}, unexpected {unexpected[:2]})",
            "export the compact model again",
        )
    carry_layout(model, layout, meta)
    model.eval()
    return model
