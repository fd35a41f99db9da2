"""Dynamic padding, length grouping, and order restoration."""

import random

import torch

from srnet_cli.engine.data.batching import Encoded, collate, eval_batches, train_batches
from srnet_cli.engine.training.loop import linear_warmup_decay, predict_logits


def _encoded(lengths: list[int]) -> Encoded:
    ids = [[i + 1] * n for i, n in enumerate(lengths)]
    return Encoded(ids, [[0] * n for n in lengths], torch.arange(len(lengths)), pad_id=0)


def test_collate_pads_to_longest_in_batch_only():
    data = _encoded([3, 5, 2, 9])
    batch = collate(data, [0, 2])
    assert batch["input_ids"].tolist() == [[1, 1, 1], [3, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [0, 2]


def test_train_batches_cover_every_example_once_and_group_lengths():
    rng = random.Random(0)
    lengths = [random.Random(i).randint(5, 60) for i in range(1000)]
    batches = train_batches(lengths, 32, rng)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    random_padded = sum(32 * 60 for _ in range(len(batches)))  # upper bound of a random batching
    assert padded < 0.7 * random_padded
    # Same seed -> same batches (determinism)
    assert train_batches(lengths, 32, random.Random(0)) == batches


def test_eval_batches_sorted_and_predictions_restored_in_dataset_order():
    lengths = [7, 2, 5, 2, 9, 1]
    batches = eval_batches(lengths, 4)
    assert [lengths[i] for b in batches for i in b] == sorted(lengths)

    class Echo(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids=None):
            first = input_ids[:, :1].float()
            return type("Out", (), {"logits": torch.cat([first, attention_mask.sum(1, keepdim=True).float()], 1)})

    logits = predict_logits(Echo(), _encoded(lengths), 4, "cpu")
    assert logits[:, 0].tolist() == [1, 2, 3, 4, 5, 6]  # example i starts with token i+1
    assert logits[:, 1].tolist() == lengths


def test_linear_warmup_then_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_warmup_decay(opt, warmup=2, total=6)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25]
