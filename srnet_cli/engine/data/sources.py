"""Where `srnet data fetch` gets the paper's data, pinned by size and SHA-256, and how the original layout
(docs/reference.md) is made from it: plain files are placed as they are, archive members are extracted, and
PAWS-QQP is generated from QQP and Google's released index files.

Pins come from published checksums (the `evidence` of each entry). An entry with `sha256=None` has none published
that could be read here: its first download is reported as unverified with the hash to pin.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from srnet_cli.errors import DataError

HF_GLUE_INFOS = "huggingface/datasets datasets/glue/dataset_infos.json (download_checksums)"
HF_HANS_INFOS = "huggingface/datasets datasets/hans/dataset_infos.json (download_checksums)"
HF_PAWS_INFOS = "huggingface/datasets datasets/paws/dataset_infos.json (download_checksums)"
UNPUBLISHED = "no published checksum found: pinned from the first verified download"


@dataclass(frozen=True)
class Source:
    """One downloaded file. `dest` is where it is kept under the data directory: the layout path itself for a plain
    file, `downloads/NAME` for an archive, whose `members` (name in the archive, layout path) are extracted."""

    task: str
    name: str
    url: str
    size: int | None
    sha256: str | None
    dest: str
    members: tuple[tuple[str, str], ...] = ()
    evidence: str = UNPUBLISHED


PAWS_QQP_INDEX = "paws_qqp.tar.gz"
# (index file in the archive, generated layout file)
PAWS_QQP_OUTPUTS = (("train.tsv", "QQP/paws_qqp/train.tsv"), ("dev_and_test.tsv", "QQP/paws_qqp/dev_and_test.tsv"))
QQP_CORPUS = ("QQP/train.tsv", "QQP/dev.tsv")  # the QQP files whose questions PAWS-QQP's indices point into

SOURCES: tuple[Source, ...] = (
    Source(
        "mnli",
        "MNLI.zip",
        "https://dl.fbaipublicfiles.com/glue/data/MNLI.zip",
        312783507,
        "e7c1d896d26ed6caf700110645df426cc2d8ebf02a5ab743d5a5c68ac1c83633",
        "downloads/MNLI.zip",
        (
            ("MNLI/train.tsv", "MNLI/train.tsv"),
            ("MNLI/dev_matched.tsv", "MNLI/dev_matched.tsv"),
            ("MNLI/dev_mismatched.tsv", "MNLI/dev_mismatched.tsv"),
        ),
        HF_GLUE_INFOS,
    ),
    Source(
        "mnli",
        "heuristics_evaluation_set.txt",
        "https://raw.githubusercontent.com/tommccoy1/hans/master/heuristics_evaluation_set.txt",
        15462062,
        "c55b62feef9913070e88f38938dc2492018c945ac81f70139346472494124e79",
        "MNLI/hans/heuristics_evaluation_set.txt",
        evidence=HF_HANS_INFOS,
    ),
    Source(
        "mnli",
        "heuristics_train_set.txt",
        "https://raw.githubusercontent.com/tommccoy1/hans/master/heuristics_train_set.txt",
        15485296,
        "49245bd5fdb0b185dcbfbf48f0f16513c62ad5bc9fad0b8800dc48d6818ee5cf",
        "MNLI/hans/heuristics_train_set.txt",
        evidence=HF_HANS_INFOS,
    ),
    Source(
        "qqp",
        "QQP-clean.zip",
        "https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip",
        41696084,
        "40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0",
        "downloads/QQP-clean.zip",
        (("QQP/train.tsv", "QQP/train.tsv"), ("QQP/dev.tsv", "QQP/dev.tsv")),
        HF_GLUE_INFOS,
    ),
    Source(
        "qqp",
        "paws_wiki_labeled_final.tar.gz",
        "https://storage.googleapis.com/paws/english/paws_wiki_labeled_final.tar.gz",
        4687157,
        "1aad6cbb8a90b15563a0c154752c2b2c8e3bc5bdaa125172214d598bc76bc9fd",
        "downloads/paws_wiki_labeled_final.tar.gz",
        (
            ("final/train.tsv", "QQP/paws_wiki/train.tsv"),
            ("final/dev.tsv", "QQP/paws_wiki/dev.tsv"),
            ("final/test.tsv", "QQP/paws_wiki/test.tsv"),
        ),
        HF_PAWS_INFOS,
    ),
    Source(
        "qqp",
        PAWS_QQP_INDEX,
        "https://storage.googleapis.com/paws/english/paws_qqp.tar.gz",
        None,
        None,
        f"downloads/{PAWS_QQP_INDEX}",
    ),
    # The processed FEVER files of the FEVER-Symmetric authors, the ones the paper trained on (its README's links).
    Source(
        "fever",
        "fever.train.jsonl",
        "https://www.dropbox.com/s/v1a0depfg7jp90f/fever.train.jsonl?dl=1",
        None,
        None,
        "fever/fever.train.jsonl",
    ),
    Source(
        "fever",
        "fever.dev.jsonl",
        "https://www.dropbox.com/s/bdwf46sa2gcuf6j/fever.dev.jsonl?dl=1",
        None,
        None,
        "fever/fever.dev.jsonl",
    ),
    Source(
        "fever",
        "fever_symmetric_generated.jsonl",
        "https://raw.githubusercontent.com/TalSchuster/FeverSymmetric/master/symmetric_v0.1/fever_symmetric_generated.jsonl",
        None,
        None,
        "fever/sym1/test.jsonl",
    ),
    Source(
        "fever",
        "fever_symmetric_dev.jsonl",
        "https://raw.githubusercontent.com/TalSchuster/FeverSymmetric/master/symmetric_v0.2/fever_symmetric_dev.jsonl",
        None,
        None,
        "fever/sym2/dev.jsonl",
    ),
    Source(
        "fever",
        "fever_symmetric_test.jsonl",
        "https://raw.githubusercontent.com/TalSchuster/FeverSymmetric/master/symmetric_v0.2/fever_symmetric_test.jsonl",
        None,
        None,
        "fever/sym2/test.jsonl",
    ),
)
FETCH_TASKS = ("mnli", "qqp", "fever")


def sources_for(tasks: Iterable[str]) -> list[Source]:
    wanted = set(tasks)
    return [s for s in SOURCES if s.task in wanted]


# ---------------------------------------------------------------------------------------------- archives
def _pick(names: list[str], member: str, archive: Path) -> str:
    """The member itself, or the same path under one extra top folder (a repacked archive)."""
    if member in names:
        return member
    found = [n for n in names if n.endswith("/" + member)]
    if not found:
        raise DataError(
            f"{archive} has no member {member!r}", "the archive is not the published one: fetch it again with --force"
        )
    return sorted(found, key=len)[0]


def read_member(archive: Path, member: str) -> bytes:
    """One member's bytes from a .zip or .tar.gz archive (read, never extracted by its own path name)."""
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                return z.read(_pick(z.namelist(), member, archive))
        with tarfile.open(archive, "r:*") as t:
            files = [m.name for m in t.getmembers() if m.isfile()]
            handle = t.extractfile(_pick(files, member, archive))
            assert handle is not None
            return handle.read()
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot read {member} from {archive}: {exc}", "fetch it again with --force") from None


# ---------------------------------------------------------------------------------------------- PAWS-QQP
Tokenize = Callable[[str], list[str]]


def word_tokenizer() -> Tokenize:
    """NLTK's `word_tokenize`, as Google's generation script uses: its token indices are what the index files hold,
    so another tokenizer would rebuild other sentences."""
    hint = "pip install nltk && python -m nltk.downloader punkt punkt_tab (then run srnet data fetch again)"
    try:
        import nltk
    except ImportError:
        raise DataError("generating PAWS-QQP needs NLTK (Google's script tokenizes QQP with it)", hint) from None
    try:
        nltk.word_tokenize("A check. Of the sentence splitter.")
    except LookupError:
        raise DataError("generating PAWS-QQP needs NLTK's punkt sentence splitter (not installed)", hint) from None
    return nltk.word_tokenize


def qqp_question_tokens(corpora: Iterable[bytes], tokenize: Tokenize) -> dict[int, list[str]]:
    """Question id -> tokens, the first text seen for an id winning; QQP is read with csv's default quoting, as the
    generation script reads it, and rows without the six columns or integer ids are passed over."""
    tokens: dict[int, list[str]] = {}
    for data in corpora:
        rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter="\t")
        next(rows, None)
        for row in rows:
            if len(row) < 6:
                continue
            for qid, text in ((row[1], row[3]), (row[2], row[4])):
                try:
                    key = int(qid)
                except ValueError:
                    continue
                if key not in tokens:
                    tokens[key] = tokenize(text)
    return tokens


def _token(qid: int, index: int, tokens: dict[int, list[str]]) -> str:
    words = tokens.get(qid)
    if words is None or index >= len(words):
        return ""
    return words[index]


def _sentence(indices: str, qid: int, tokens: dict[int, list[str]]) -> bytes:
    """`3/0/(17, 2):(17, 3)/5`: token 3 of the pair's question, then token 0, then tokens 2 and 3 of question 17
    glued together, ... joined by spaces; empty when any token is missing (the example cannot be rebuilt)."""
    words = []
    for part in indices.split("/"):
        if not part.startswith("("):
            word = _token(qid, int(part), tokens)
        else:
            word = ""
            for pair in part.split(":"):
                other, _, index = pair.strip().strip("()").partition(",")
                piece = _token(int(other), int(index), tokens)
                if not piece:
                    return b""
                word += piece
        if not word:
            return b""
        words.append(word)
    return " ".join(words).encode("utf-8")


def generate_paws_qqp(index: bytes, tokens: dict[int, list[str]]) -> tuple[bytes, int, int]:
    """PAWS-QQP rows from one index file (id, qid1, sentence1, qid2, sentence2, label): the output of Google's
    `qqp_generate_data.py` run under Python 3 -- sentences as `b'...'` literals of their UTF-8 bytes, tab-separated,
    CRLF line ends (csv's default), examples that cannot be rebuilt left out. Returns (file bytes, built, failed)."""
    out = ["id\tsentence1\tsentence2\tlabel"]
    built = failed = 0
    rows = csv.reader(io.StringIO(index.decode("utf-8"), newline=""), delimiter="\t")
    next(rows, None)
    for row in rows:
        if len(row) < 6:
            failed += 1
            continue
        ident, qid1, indices1, qid2, indices2, label = row[:6]
        try:
            first = _sentence(indices1, int(qid1), tokens)
            second = _sentence(indices2, int(qid2), tokens) if first else b""
        except ValueError:
            first = second = b""
        if not first or not second:
            failed += 1
            continue
        out.append(f"{ident}\t{first!r}\t{second!r}\t{label}")
        built += 1
    return ("\r\n".join(out) + "\r\n").encode("utf-8"), built, failed


def write_bytes_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}.part")
    try:
        part.write_bytes(data)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
