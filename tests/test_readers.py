"""Readers on small hand-made files in the exact upstream formats."""

from pathlib import Path

import pytest

from srnet_cli.engine.data.readers import Example, dataset_from_hub_rows, load_split, mnli_dir, read_hans, read_mnli
from srnet_cli.errors import DataError

TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
DEV_HEADER = TRAIN_HEADER.replace("label1\tgold_label", "label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")
HANS_HEADER = (
    "gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
    "sentence1\tsentence2\tpairID\theuristic\tsubcase\ttemplate"
)


def _train_row(i: int, s1: str, s2: str, label: str) -> str:
    return f"{i}\t31193\t31193n\tgovernment\t( ( x ) )\t( y )\t(ROOT (S x))\t(ROOT (S y))\t{s1}\t{s2}\t{label}\t{label}"


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_mnli_train_keeps_quotes_and_counts_malformed_rows(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        [
            TRAIN_HEADER,
            _train_row(0, 'He said "yes" to it.', 'He said "no".', "contradiction"),
            _train_row(1, "A man sleeps.", "A person sleeps.", "entailment"),
            "2\tonly\tthree",  # wrong field count
            _train_row(3, "A dog.", "A cat.", "maybe"),  # unknown label
            _train_row(4, "Rain.", "Wet streets.", "neutral"),
        ],
    )
    data = read_mnli(path, "train")
    assert [e.id for e in data.examples] == ["train-0", "train-1", "train-4"]
    assert data.examples[0].text_a == 'He said "yes" to it.'  # quotes are text, not CSV quoting
    assert data.labels == ["contradiction", "entailment", "neutral"]
    assert [line for line, _ in data.malformed] == [4, 5]
    assert "unknown label 'maybe'" in data.malformed[1][1]
    assert "2 malformed rows" in data.summary()


def test_mnli_dev_uses_gold_label_not_label1(tmp_path):
    row = _train_row(7, "A.", "B.", "neutral").replace(
        "neutral\tneutral", "neutral\tentailment\tentailment\tentailment\tneutral\tentailment"
    )
    data = read_mnli(write(tmp_path / "dev_matched.tsv", [DEV_HEADER, row]), "dev_matched")
    assert data.examples[0].label == "entailment"
    assert data.examples[0].id == "dev_matched-7"


def test_strict_mode_makes_malformed_rows_fatal(tmp_path):
    path = write(tmp_path / "train.tsv", [TRAIN_HEADER, "0\tbad"])
    with pytest.raises(DataError, match=r"train.tsv:2: expected 12"):
        read_mnli(path, "train", strict=True)


def test_missing_column_empty_file_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no column 'sentence1'"):
        read_mnli(write(tmp_path / "a.tsv", ["index\tfoo\tgold_label", "0\tx\tentailment"]), "train")
    with pytest.raises(DataError, match="is empty"):
        read_mnli(write(tmp_path / "b.tsv", []), "train")
    with pytest.raises(DataError, match="not found"):
        read_mnli(tmp_path / "nope.tsv", "train")


def test_hans_keeps_heuristic_subcase_template(tmp_path):
    path = write(
        tmp_path / "hans.txt",
        [
            HANS_HEADER,
            "non-entailment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tThe doctor saw the lawyer .\t"
            "The lawyer saw the doctor .\t"
            "ex0\tlexical_overlap\tln_subject/object_swap\ttemp1",
            "entailment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tSince the actor slept , the judge ran .\tThe actor slept .\t"
            "ex1\tconstituent\tce_embedded_under_since\ttemp3",
        ],
    )
    data = read_hans(path)
    assert [e.id for e in data.examples] == ["ex0", "ex1"]
    assert dict(data.examples[1].meta) == {
        "heuristic": "constituent",
        "subcase": "ce_embedded_under_since",
        "template": "temp3",
    }
    with pytest.raises(DataError, match="no column 'heuristic'"):
        read_hans(write(tmp_path / "h2.txt", ["gold_label\tsentence1\tsentence2\tpairID", "entailment\ta\tb\tex0"]))


def test_layout_accepts_data_root_or_mnli_dir(synth_dir):
    assert mnli_dir(synth_dir) == synth_dir / "MNLI"
    assert mnli_dir(synth_dir / "MNLI") == synth_dir / "MNLI"
    assert len(load_split("mnli", "hans", synth_dir / "MNLI").examples) == 48


def test_missing_file_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="data file not found") as info:
        load_split("mnli", "train", tmp_path)  # a --data-dir never falls back to the hub
    assert "srnet data synth" in info.value.hint
    with pytest.raises(DataError, match="no --data-dir given and the hub is disabled"):
        load_split("mnli", "train", None)


def test_non_utf8_file_is_a_data_error(tmp_path):
    (tmp_path / "train.tsv").write_bytes(TRAIN_HEADER.encode() + b"\n0\t\xff\xfe\n")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        read_mnli(tmp_path / "train.tsv", "train")


def test_hub_rows_map_labels_by_name():
    class Label:
        names = ["entailment", "neutral", "contradiction"]  # the hub's MNLI order differs from GLUE TSV's

    class Rows(list):
        features = {"label": Label()}

    rows = Rows(
        [
            {"premise": "a", "hypothesis": "b", "label": 2, "idx": 5},
            {"premise": "c", "hypothesis": "d", "label": -1, "idx": 6},
        ]
    )
    data = dataset_from_hub_rows("dev_matched", rows)
    assert data.examples == [Example("dev_matched-5", "a", "b", "contradiction", 0)]
    assert len(data.malformed) == 1
