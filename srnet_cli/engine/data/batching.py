"""Tokenisation once per dataset, dynamic padding, and length-grouped batches.

Padding every batch to a fixed 128 tokens (as the original code did) wastes most of the compute on NLI pairs
that are ~20-40 tokens long; here each batch is padded to its own longest example, and examples of similar
length are grouped so that little padding is left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from srnet_cli.engine.data.readers import Example

MEGABATCH = 50  # training batches per length-sorted pool: short enough that shuffling stays random


@dataclass
class Encoded:
    """Unpadded token ids of one dataset, aligned labels (class indices), optional bias log-probs and teacher probs."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: torch.Tensor
    pad_id: int
    bias: torch.Tensor | None = None
    teacher: torch.Tensor | None = None  # conf-reg: teacher probabilities, aligned like `bias`

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.input_ids]


def encode(examples: list[Example], tokenizer, max_length: int, label_index: dict[str, int]) -> Encoded:
    """Tokenise (text_a, text_b) pairs without padding. Labels not in `label_index` become -1 (e.g. HANS)."""
    enc = tokenizer([e.text_a for e in examples], [e.text_b for e in examples], truncation=True, max_length=max_length)
    types = enc.get("token_type_ids")
    labels = torch.tensor([label_index.get(e.label, -1) for e in examples], dtype=torch.long)
    return Encoded(enc["input_ids"], types, labels, pad_id=tokenizer.pad_token_id or 0)


def collate(data: Encoded, indices: list[int], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Pad the selected examples to the longest among them."""
    width = max(len(data.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), data.pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    types = torch.zeros((len(indices), width), dtype=torch.long) if data.token_type_ids is not None else None
    for row, i in enumerate(indices):
        n = len(data.input_ids[i])
        ids[row, :n] = torch.tensor(data.input_ids[i])
        mask[row, :n] = 1
        if types is not None:
            types[row, :n] = torch.tensor(data.token_type_ids[i])  # type: ignore[index]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": data.labels[indices]}
    if types is not None:
        batch["token_type_ids"] = types
    if data.bias is not None:
        batch["bias"] = data.bias[indices]
    if data.teacher is not None:
        batch["teacher"] = data.teacher[indices]
    return {k: v.to(device) for k, v in batch.items()}


def train_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of length-grouped batches: shuffle, sort within pools of MEGABATCH batches, shuffle batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * MEGABATCH
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class BatchStream:
    """Length-grouped training batches over as many epochs as asked for; one stream per run, so consecutive
    `train_loop` calls (IMP intervals) continue the data order instead of restarting it."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size = lengths, batch_size
        self.rng = random.Random(seed)
        self.epoch, self.position = 0, 0
        self._new_epoch()

    def _new_epoch(self) -> None:
        self._epoch_rng = self.rng.getstate()  # enough to rebuild this epoch's batches on resume
        self._batches = train_batches(self.lengths, self.batch_size, self.rng)

    def state(self) -> dict:
        """Where the stream is: the RNG state its current epoch was drawn from, the epoch, the position in it."""
        return {"rng": self._epoch_rng, "epoch": self.epoch, "position": self.position}

    def restore(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self._new_epoch()
        self.epoch, self.position = state["epoch"], state["position"]

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> list[int]:
        if self.position >= len(self._batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._new_epoch()
        self.position += 1
        return self._batches[self.position - 1]


def eval_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Batches of examples sorted by length; callers scatter results back by index, so order is restored."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[j : j + batch_size] for j in range(0, len(order), batch_size)]
