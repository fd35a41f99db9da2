"""Evaluation computes the last layer for the first token only: the one token a sequence classifier reads.

A classifier's head reads the last layer at position 0 ([CLS] / <s>). In that layer, the keys and values of every
token are needed, but the attention output projection, the residual norm and the FFN are needed at position 0 only:
for a 6-layer encoder that is about an eighth of the evaluation's matrix products, skipped without changing a
logit (each position's rows are computed independently). Two pre-hooks on the last layer do it, placed by the
structure map: the attention output projection and the norm that takes the attention block's residual sum get
their input cut to position 0 (the residual add between them broadcasts: row 0 stays exact, the rest is dropped).
From there the layer runs on one position, in post-LN and pre-LN layers alike.

Only for inference (the hooks live inside `first_token_only`'s `with` block), and only where the structure map says
the head reads the first token: a family without `attention_norm` (ALBERT shares its layers, so a hook would cut
every layer), a pooling the map does not name (ModernBERT's mean pooling), a chunked FFN (`chunk_size_feed_forward`),
or a model srnet cannot place runs whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn


def first_token_modules(model: nn.Module) -> tuple[str, str] | None:
    """(attention output projection, residual norm) of the last layer, or None where the cut does not apply."""
    from srnet_cli.engine.sparse.structure import config_of, structure_of
    from srnet_cli.errors import MaskError

    if not type(model).__name__.endswith("ForSequenceClassification"):
        return None
    try:
        structure = structure_of(model)
    except MaskError:
        return None
    family, config = structure.family, config_of(model)
    if not family.attention_norm or family.shared_layers or getattr(config, "output_hidden_states", False):
        return None
    if (getattr(config, "chunk_size_feed_forward", 0) or 0) > 1:  # its FFN chunks need the whole sequence length
        return None
    if family.pooling is not None and getattr(config, family.pooling[0], None) != family.pooling[1]:
        return None
    last = structure.layers[-1]
    return last.modules["attention_output"], f"{last.prefix}.{family.attention_norm}"


def _first_position(_module: nn.Module, args: tuple) -> tuple | None:
    """Cut a [batch, positions, features] input to position 0; anything else (an unpadded [tokens, features] input
    of a variable-length attention kernel) passes unchanged, which is still exact, only not faster."""
    hidden: torch.Tensor = args[0]
    if hidden.dim() != 3 or hidden.shape[1] == 1:
        return None
    return (hidden[:, :1], *args[1:])


@contextmanager
def first_token_only(model: nn.Module) -> Iterator[bool]:
    """Within the block, `model`'s last layer runs for position 0 only (yields whether it does). The logits are
    unchanged; the last hidden state keeps position 0 only, so use it for logits, never for hidden states."""
    modules = first_token_modules(model)
    if modules is None:
        yield False
        return
    handles = [model.get_submodule(name).register_forward_pre_hook(_first_position) for name in modules]
    try:
        yield True
    finally:
        for handle in handles:
            handle.remove()
