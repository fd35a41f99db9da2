"""Tiny constituency trees for generated sentences.

The synthetic benchmarks build every sentence as a tree so that the MNLI and HANS files can carry real
`*_parse` (Penn-style) and `*_binary_parse` columns, exactly as the upstream files do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tree:
    """A constituent `label` over `children`; a leaf is a POS tag over one word."""

    label: str
    children: tuple[Tree, ...] = ()
    word: str | None = None

    @property
    def is_leaf(self) -> bool:
        return self.word is not None

    def words(self) -> list[str]:
        if self.word is not None:
            return [self.word]
        return [w for child in self.children for w in child.words()]


def leaf(tag: str, word: str) -> Tree:
    return Tree(tag, word=word)


def node(label: str, *children: Tree) -> Tree:
    return Tree(label, tuple(children))


def sentence_text(tree: Tree) -> str:
    """Detokenised text: capitalised first word, no space before punctuation."""
    words = tree.words()
    text = ""
    for word in words:
        if text and word not in {".", ","}:
            text += " "
        text += word
    return text[:1].upper() + text[1:]


def penn_parse(tree: Tree) -> str:
    """`(ROOT (S (NP (DT The) (NN doctor)) ...))`, the format of MNLI's `sentence1_parse` column."""
    return f"(ROOT {_penn(tree, first=[True])})"


def _leaf_word(tree: Tree, first: list[bool]) -> str:
    """The leaf's word, capitalised when it is the sentence's first (`first` is shared across the walk)."""
    word = tree.word or ""
    if first[0]:
        first[0] = False
        return word[:1].upper() + word[1:]
    return word


def _penn(tree: Tree, first: list[bool]) -> str:
    if tree.word is not None:
        return f"({tree.label} {_leaf_word(tree, first)})"
    return f"({tree.label} " + " ".join(_penn(c, first) for c in tree.children) + ")"


def binary_parse(tree: Tree) -> str:
    """`( ( The doctor ) ( saw ( the lawyer ) ) )`: unlabelled, right-binarised, as in `sentence1_binary_parse`."""
    return _binary(tree, first=[True])


def _binary(tree: Tree, first: list[bool]) -> str:
    if tree.word is not None:
        return _leaf_word(tree, first)
    parts = [_binary(c, first) for c in tree.children]
    while len(parts) > 2:  # right-binarise n-ary nodes
        parts = parts[:-2] + [f"( {parts[-2]} {parts[-1]} )"]
    return parts[0] if len(parts) == 1 else f"( {parts[0]} {parts[1]} )"
