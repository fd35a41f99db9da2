"""The structure map: for each encoder family, where every linear layer of a classifier sits and what it does.

Masks are keyed by the model's own parameter names, so masks and baked checkpoints stay Hugging Face-native; the map
says which of those names are the paper's matrices. For every layer it places the roles Q, K, V, attention output,
FFN-in, FFN-out (and the gate of a GLU FFN), with fused layouts first-class (ModernBERT's `attn.Wqkv` stacks Q, K and
V; DeBERTa's `in_proj` interleaves them head by head; ModernBERT's `mlp.Wi` stacks the FFN input and gate halves).
Outside the layers it places the pre-trained pooler (masked by default, as the paper does with BERT's), the
classification head (new at fine-tuning), and the linears left dense, each with its reason.

Coverage is checked, never assumed: `structure_of` places *every* `nn.Linear` of the model or refuses it, naming the
modules it cannot place. No code path masks part of an encoder silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from srnet_cli.errors import MaskError

if TYPE_CHECKING:  # `srnet models` and --dry-run list the map without importing torch
    from torch import nn
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class Placement:
    """Where one role sits inside a layer: a module path relative to the layer, and for a fused matrix which block
    of its output rows (`part` of `parts`), stacked (all heads of Q, then of K, ...) or interleaved head by head."""

    module: str
    part: int = 0
    parts: int = 1
    per_head: bool = False


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    layer: str  # regex of one layer's module prefix (without a leading anchor)
    roles: dict[str, Placement]
    pooler: tuple[str, ...] = ()  # regexes of pre-trained pooler linears (the paper masks BERT's)
    head: tuple[str, ...] = ("classifier",)  # regexes of the classification head's linears
    dense: dict[str, str] = field(default_factory=dict)  # regex -> why that linear is left dense
    shared_layers: bool = False  # one set of matrices used by every layer (ALBERT)
    token_types: bool = True  # pairs are encoded with segment ids
    # the norm (relative to a layer) that takes the attention block's residual sum: the post-attention LayerNorm,
    # or in a pre-LN layer the norm that opens the FFN; evaluation runs the last layer from there on for the first
    # token only, the one the classification head reads (`first_token`); "" where that does not apply
    attention_norm: str = ""
    pooling: tuple[str, str] | None = None  # (config attribute, value) under which the head reads the first token
    note: str = ""

    @property
    def matrices(self) -> tuple[str, ...]:
        """The distinct matrices of one layer, in role order."""
        return tuple(dict.fromkeys(p.module for p in self.roles.values()))


def _plain(q: str, k: str, v: str, o: str, ffn_in: str, ffn_out: str) -> dict[str, Placement]:
    return {
        "query": Placement(q),
        "key": Placement(k),
        "value": Placement(v),
        "attention_output": Placement(o),
        "ffn_in": Placement(ffn_in),
        "ffn_out": Placement(ffn_out),
    }


BERT_ROLES = _plain(
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
EMBEDDING_PROJECTION = "projects the embeddings to the hidden size before the first layer (not an encoder layer)"
POSITION_PROJECTION = (
    "projects the relative-position embeddings, not the tokens: not one of the paper's six matrices, and absent "
    "from DeBERTa-v3's shared-key layout, so counting it would make sparsities incomparable across families"
)

FAMILIES: tuple[Family, ...] = (
    Family(
        "bert",
        ("bert", "roberta", "xlm-roberta", "camembert", "electra"),
        r"encoder\.layer\.\d+",
        BERT_ROLES,
        pooler=(r"pooler\.dense",),
        head=(r"classifier", r"classifier\.dense", r"classifier\.out_proj"),
        dense={r"embeddings_project": EMBEDDING_PROJECTION},
        attention_norm="attention.output.LayerNorm",
        note="BERT, MiniLM, RoBERTa, XLM-R, CamemBERT, ELECTRA; only BERT has a pre-trained pooler",
    ),
    Family(
        "deberta-v2",
        ("deberta-v2",),
        r"encoder\.layer\.\d+",
        _plain(
            "attention.self.query_proj",
            "attention.self.key_proj",
            "attention.self.value_proj",
            "attention.output.dense",
            "intermediate.dense",
            "output.dense",
        ),
        head=(r"pooler\.dense", r"classifier"),
        dense={r"attention\.self\.pos_(key|query)_proj": POSITION_PROJECTION},
        attention_norm="attention.output.LayerNorm",
        note="DeBERTa-v2/v3; its ContextPooler is new at fine-tuning, so it belongs to the head",
    ),
    Family(
        "deberta",
        ("deberta",),
        r"encoder\.layer\.\d+",
        {
            "query": Placement("attention.self.in_proj", 0, 3, per_head=True),
            "key": Placement("attention.self.in_proj", 1, 3, per_head=True),
            "value": Placement("attention.self.in_proj", 2, 3, per_head=True),
            "attention_output": Placement("attention.output.dense"),
            "ffn_in": Placement("intermediate.dense"),
            "ffn_out": Placement("output.dense"),
        },
        head=(r"pooler\.dense", r"classifier"),
        dense={r"attention\.self\.pos_(q_)?proj": POSITION_PROJECTION},
        attention_norm="attention.output.LayerNorm",
        note="DeBERTa (v1): Q, K, V fused in in_proj, interleaved head by head",
    ),
    Family(
        "distilbert",
        ("distilbert",),
        r"transformer\.layer\.\d+",
        _plain("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2"),
        head=(r"pre_classifier", r"classifier"),
        token_types=False,
        attention_norm="sa_layer_norm",
    ),
    Family(
        "mpnet",
        ("mpnet",),
        r"encoder\.layer\.\d+",
        _plain(
            "attention.attn.q",
            "attention.attn.k",
            "attention.attn.v",
            "attention.attn.o",
            "intermediate.dense",
            "output.dense",
        ),
        head=(r"classifier\.dense", r"classifier\.out_proj"),
        token_types=False,
        attention_norm="attention.LayerNorm",
    ),
    Family(
        "modernbert",
        ("modernbert",),
        r"layers\.\d+",
        {
            "query": Placement("attn.Wqkv", 0, 3),
            "key": Placement("attn.Wqkv", 1, 3),
            "value": Placement("attn.Wqkv", 2, 3),
            "attention_output": Placement("attn.Wo"),
            "ffn_in": Placement("mlp.Wi", 0, 2),
            "ffn_gate": Placement("mlp.Wi", 1, 2),
            "ffn_out": Placement("mlp.Wo"),
        },
        pooler=(r"head\.dense",),
        head=(r"classifier",),
        token_types=False,
        attention_norm="mlp_norm",
        pooling=("classifier_pooling", "cls"),
        note="Q, K, V stacked in attn.Wqkv; FFN input and gate halves stacked in mlp.Wi (GLU); "
        "head.dense is pre-trained (the MLM head's), so it is the pooler",
    ),
    Family(
        "albert",
        ("albert",),
        r"encoder\.albert_layer_groups\.\d+\.albert_layers\.\d+",
        _plain("attention.query", "attention.key", "attention.value", "attention.dense", "ffn", "ffn_output"),
        pooler=(r"albert\.pooler",),
        head=(r"classifier",),
        dense={r"encoder\.embedding_hidden_mapping_in": EMBEDDING_PROJECTION},
        shared_layers=True,
        note="one set of matrices shared by every layer: a mask of a shared matrix prunes it in every layer, and "
        "sparsity counts each shared matrix once (the weights removed)",
    ),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)
MODEL_TYPES = tuple(t for f in FAMILIES for t in f.model_types)


def family_for(model_type: str, override: str | None = None) -> Family:
    """The family of a `config.model_type`, or the one named by `mask.family` (for a model whose own type srnet does
    not know but whose modules follow a known layout: the coverage check still places every linear)."""
    if override:
        for family in FAMILIES:
            if family.name == override:
                return family
        raise MaskError(f"mask.family {override!r} is not a known family", f"one of: {', '.join(FAMILY_NAMES)}")
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise MaskError(
        f"srnet has no structure map for model type {model_type!r}, so it cannot say which matrices to mask",
        f"supported: {', '.join(MODEL_TYPES)}; if this model's modules follow one of those layouts, "
        f"--set mask.family=NAME ({', '.join(FAMILY_NAMES)}; every linear is still checked)",
    )


def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|\.)(?:{pattern})$")


@dataclass(frozen=True)
class Layer:
    prefix: str  # the layer's module name, e.g. `bert.encoder.layer.3`
    modules: dict[str, str]  # role -> full module name (several roles share a fused matrix)

    @property
    def matrices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.modules.values()))


@dataclass(frozen=True)
class Structure:
    """Where every linear of one model sits (the result of the coverage check)."""

    family: Family
    layers: tuple[Layer, ...]
    pooler: tuple[str, ...]
    head: tuple[str, ...]
    dense: dict[str, str]  # module name -> reason
    num_heads: int
    head_size: int
    ffn_size: int
    uses: int = 1  # how many encoder layers run each mapped layer (ALBERT: all of them)

    @property
    def encoder(self) -> tuple[str, ...]:
        return tuple(m for layer in self.layers for m in layer.matrices)

    def targets(self, include_pooler: bool, include_classifier: bool) -> list[str]:
        """The module names to mask: every layer's matrices, the pooler and the head as asked."""
        return (
            list(self.encoder)
            + list(self.pooler if include_pooler else ())
            + list(self.head if include_classifier else ())
        )

    def head_params(self, model: nn.Module) -> list[str]:
        return [f"{m}.{p}" for m in self.head for p, _ in model.get_submodule(m).named_parameters()]


# modules srnet itself adds to a model while it trains, with why they are never masked
TRAINING_MODULES = {"srnet_gate": "learned-mixin's gate: part of the loss, not of the encoder (never saved)"}


def _linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    from torch import nn

    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def config_of(model: nn.Module) -> PretrainedConfig:
    """A transformers model's config (nn.Module's attribute lookup types it as a tensor or module)."""
    return cast("PretrainedConfig", model.config)


def _linear(module: nn.Module) -> nn.Linear:
    """A placed module: a linear (or srnet's masked linear, which extends it)."""
    return cast("nn.Linear", module)


def structure_of(model: nn.Module, family_name: str | None = None, leave_dense: tuple[str, ...] = ()) -> Structure:
    """Place every linear of `model` (its family's map, plus `leave_dense` regexes the user named) or refuse it."""
    config = config_of(model)
    family = family_for(config.model_type, family_name)
    layer_re = re.compile(rf"(?:^|\.)({family.layer})\.(.+)$")
    matrices = set(family.matrices)
    pooler = [_anchored(p) for p in family.pooler]
    head = [_anchored(p) for p in family.head]
    dense = [(_anchored(p), why) for p, why in family.dense.items()]
    user_dense = [_anchored(p) for p in leave_dense]
    layers: dict[str, dict[str, str]] = {}
    poolers, heads, left, unplaced = [], [], {}, []
    for name, _ in _linears(model):
        found = layer_re.search(name)
        if name in TRAINING_MODULES:
            left[name] = TRAINING_MODULES[name]
        elif found and found.group(2) in matrices:
            prefix = name[: found.end(1)]
            for role, placement in family.roles.items():
                if placement.module == found.group(2):
                    layers.setdefault(prefix, {})[role] = name
        elif any(p.search(name) for p in pooler):
            poolers.append(name)
        elif any(p.search(name) for p in head):
            heads.append(name)
        elif reason := next((why for p, why in dense if p.search(name)), None):
            left[name] = reason
        elif any(p.search(name) for p in user_dense):
            left[name] = "left dense by mask.leave_dense"
        else:
            unplaced.append(name)
    if unplaced:
        shown = ", ".join(unplaced[:4]) + (f" (and {len(unplaced) - 4} more)" if len(unplaced) > 4 else "")
        raise MaskError(
            f"the {family.name} structure map does not place {len(unplaced)} linear layer(s) of this "
            f"{config.model_type} model: {shown}",
            "srnet masks a model only when it can place every linear; to leave them dense on purpose, "
            "--set 'mask.leave_dense=[\"REGEX\"]' (the names are recorded)",
        )
    expected = _mapped_layers(config, family)
    incomplete = [p for p, roles in layers.items() if set(roles) != set(family.roles)]
    if not layers or incomplete or (expected is not None and len(layers) != expected):
        detail = (
            f"layer {incomplete[0]} lacks {', '.join(sorted(set(family.roles) - set(layers[incomplete[0]])))}"
            if incomplete
            else f"found {len(layers)} layers, the config says {expected}"
        )
        raise MaskError(
            f"this {config.model_type} model does not have the {family.name} layout: {detail}",
            "srnet masks a model only when every layer has all its matrices (see `srnet models`)",
        )
    first = next(iter(layers.values()))
    modules = dict(model.named_modules())
    q = family.roles["query"]
    q_rows = _linear(modules[first["query"]]).out_features // q.parts
    num_heads = int(getattr(config, "num_attention_heads", 0) or 1)
    # from the config, not the first layer's rows: a compact model's layers keep different numbers of heads
    head_size = int(getattr(config, "attention_head_size", 0) or getattr(config, "hidden_size", 0) // num_heads)
    head_size = head_size or q_rows // num_heads
    ffn = family.roles["ffn_in"]
    ffn_size = _linear(modules[first["ffn_in"]]).out_features // ffn.parts
    # ALBERT: each group's layers run num_hidden_layers / num_hidden_groups times
    uses = int(config.num_hidden_layers) // int(getattr(config, "num_hidden_groups", 1)) if family.shared_layers else 1
    return Structure(
        family,
        tuple(Layer(p, r) for p, r in layers.items()),
        tuple(poolers),
        tuple(heads),
        left,
        num_heads,
        head_size,
        ffn_size,
        uses,
    )


def _mapped_layers(config, family: Family) -> int | None:
    if family.shared_layers:
        return int(getattr(config, "num_hidden_groups", 1)) * int(getattr(config, "inner_group_num", 1))
    layers = getattr(config, "num_hidden_layers", None)
    return int(layers) if isinstance(layers, int) else None


def _layer_matrix_pattern() -> re.Pattern[str]:
    """Any family's layer matrices, by weight name: the encoder denominator of a mask file without its model."""
    alternatives = [rf"{f.layer}\.(?:{'|'.join(re.escape(m) for m in f.matrices)})" for f in FAMILIES]
    return re.compile(rf"(?:^|\.)(?:{'|'.join(alternatives)})\.weight$")


LAYER_MATRIX = _layer_matrix_pattern()


def is_encoder_weight(name: str) -> bool:
    return LAYER_MATRIX.search(name) is not None


def uses_token_types(model: nn.Module) -> bool:
    """Whether pairs are fed with segment ids: the family has them and the model has a table for them (DeBERTa-v3's
    `type_vocab_size` is 0: its tokenizer emits ids that the model never reads)."""
    config = config_of(model)
    try:
        family = family_for(config.model_type)
    except MaskError:
        family = None
    types = getattr(config, "type_vocab_size", None)
    return (family is None or family.token_types) and types != 0


def describe() -> list[dict]:
    """The map as rows for `srnet models`."""
    return [
        {
            "family": f.name,
            "model_types": list(f.model_types),
            "layer": f.layer.replace(r"\d+", "N").replace("\\", ""),
            "matrices_per_layer": len(f.matrices),
            "roles": {
                role: p.module
                + (f" [{p.part + 1}/{p.parts}{', per head' if p.per_head else ''}]" if p.parts > 1 else "")
                for role, p in f.roles.items()
            },
            "pooler": [p.replace("\\", "") for p in f.pooler],
            "head": [p.replace("\\", "") for p in f.head],
            "left_dense": {p.replace("\\", ""): why for p, why in f.dense.items()},
            "shared_layers": f.shared_layers,
            "note": f.note,
        }
        for f in FAMILIES
    ]
