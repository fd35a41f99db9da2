"""The benchmark's workload: MNLI-length pairs and the original project's settings."""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from srnet_cli.engine.data.readers import Example


WARMUP_STEPS = 8  # the untimed run before any timing
ORIGINAL_PAD = 128  # run_glue.py pads every pair to --max_seq_length 128
ORIGINAL_EVAL_BATCH = 8  # and evaluates with batch size 8


def realistic_examples(n: int, seed: int) -> list[Example]:
    """Built-in NLI pairs stretched to MNLI-like lengths: premise words ~ lognormal(median 19, σ 0.55), hypothesis
    ~ lognormal(median 9.5, σ 0.45), about 22 and 11 words on average as in MNLI's training set (premises are
    extended with further generated sentences; the label is irrelevant to speed). Each sentence gets back the
    period the built-in benchmark leaves out, as MNLI's sentences have one."""
    from srnet_cli.engine.data import synth_nli
    from srnet_cli.engine.data.readers import Example, load_split

    with tempfile.TemporaryDirectory() as tmp:
        synth_nli.write_synth_nli(Path(tmp), synth_nli.SynthNliSpec(train_size=max(n, 300), dev_size=3, seed=seed))
        base = load_split("mnli", "train", Path(tmp)).examples
    rng = random.Random(seed)
    sentences = [e.text_a + "." for e in base]

    def stretch(text: str, target: int) -> str:
        words = text.split()
        while len(words) < target:
            words += rng.choice(sentences).split()
        return " ".join(words[: max(target, 3)])

    out = []
    for i in range(n):
        e = base[i % len(base)]
        premise = stretch(e.text_a + ".", round(rng.lognormvariate(math.log(19), 0.55)))
        hypothesis = stretch(e.text_b + ".", round(rng.lognormvariate(math.log(9.5), 0.45)))
        out.append(Example(f"bench-{i}", premise, hypothesis, e.label, i))
    return out
