"""`srnet data fetch` against a loopback HTTP server that serves fixture files under the real URLs' host/path
(--mirror): download, pins, re-runs, corruption, truncation, 404, no network, --source-dir, PAWS-QQP generation, and
the fetched directory read by bias-model, finetune and evaluate for all three tasks."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.data import sources as ds
from srnet_cli.engine.data import synth_fact, synth_nli, synth_paraphrase
from srnet_cli.engine.data.readers import HUB_SPLITS, load_split
from srnet_cli.errors import DataError, MissingDataError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- fixture files
def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _paws_qqp_index(qqp_train: bytes) -> tuple[bytes, bytes]:
    """Index files pointing into the fixture QQP (whitespace tokens): word swaps of question 1 into sentence 1 and
    question 2 unchanged, one token glued from another question, and one example whose question is not in QQP."""
    rows = [line.split("\t") for line in qqp_train.decode().splitlines()[1:]]
    lines = ["id\tqid1\tsentence1\tqid2\tsentence2\tlabel"]
    for n, (_, qid1, qid2, q1, q2, _dup) in enumerate(rows[:30]):
        first = list(range(len(q1.split())))
        first[0], first[-1] = first[-1], first[0]
        second = "/".join(str(i) for i in range(len(q2.split())))
        lines.append(f"{n + 1}\t{qid1}\t{'/'.join(map(str, first))}\t{qid2}\t{second}\t{n % 2}")
    _, qid1, qid2, _, _, _ = rows[0]
    lines.append(f"31\t{qid1}\t0/({qid2}, 0):({qid1}, 1)\t{qid2}\t0\t1")
    lines.append("32\t999999999\t0/1\t999999998\t0\t0")
    train = ("\n".join(lines) + "\n").encode()
    return train, train


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, bytes]:
    """The bytes each real URL would serve, made from the built-in benchmarks in the same formats."""
    root = tmp_path_factory.mktemp("published")
    synth_nli.write_synth_nli(root, synth_nli.SynthNliSpec(train_size=120, dev_size=40, hans_per_subcase=2, seed=3))
    spec = synth_paraphrase.SynthParaphraseSpec(train_size=120, dev_size=40, challenge_size=24, seed=2)
    synth_paraphrase.write_synth_paraphrase(root, spec)
    synth_fact.write_synth_fact(root, synth_fact.SynthFactSpec(train_size=120, dev_size=40, challenge_size=24, seed=2))

    def read(rel: str) -> bytes:
        return (root / rel).read_bytes()

    qqp_index, qqp_index_dev = _paws_qqp_index(read("QQP/train.tsv"))
    return {
        "MNLI.zip": _zip(
            {f"MNLI/{n}": read(f"MNLI/{n}") for n in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv")}
        ),
        "heuristics_evaluation_set.txt": read("MNLI/hans/heuristics_evaluation_set.txt"),
        "heuristics_train_set.txt": read("MNLI/hans/heuristics_train_set.txt"),
        "QQP-clean.zip": _zip({"QQP/train.tsv": read("QQP/train.tsv"), "QQP/dev.tsv": read("QQP/dev.tsv")}),
        "paws_wiki_labeled_final.tar.gz": _targz(
            {
                "final/train.tsv": read("QQP/paws_wiki/train.tsv"),
                "final/dev.tsv": read("QQP/paws_wiki/test.tsv"),
                "final/test.tsv": read("QQP/paws_wiki/test.tsv"),
            }
        ),
        "paws_qqp.tar.gz": _targz({"paws_qqp/train.tsv": qqp_index, "paws_qqp/dev_and_test.tsv": qqp_index_dev}),
        "fever.train.jsonl": read("fever/fever.train.jsonl"),
        "fever.dev.jsonl": read("fever/fever.dev.jsonl"),
        "fever_symmetric_generated.jsonl": read("fever/sym1/test.jsonl"),
        "fever_symmetric_dev.jsonl": read("fever/sym2/dev.jsonl"),
        "fever_symmetric_test.jsonl": read("fever/sym2/test.jsonl"),
    }


class Server:
    """Serves `files` (URL path -> bytes); paths in `truncate` announce their full length and send half."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.requests.append(path)
                data = server.files.get(path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if path in server.truncate else data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def url_path(source: ds.Source) -> str:
    parts = urlsplit(source.url)
    return f"/{parts.netloc}{parts.path}"


@pytest.fixture
def server(published, monkeypatch):
    """The loopback server holding every source, and the table pinned to the fixture bytes (FEVER train left
    unpinned, as in the real table)."""
    srv = Server()
    pinned = []
    for source in ds.SOURCES:
        data = published[source.name]
        srv.files[url_path(source)] = data
        unpinned = source.name == "fever.train.jsonl"
        pinned.append(
            dataclasses.replace(source, size=None if unpinned else len(data), sha256=None if unpinned else sha(data))
        )
    monkeypatch.setattr(ds, "SOURCES", tuple(pinned))
    monkeypatch.setattr(ds, "word_tokenizer", lambda: str.split)  # the fixture index files count whitespace tokens
    monkeypatch.delenv("SRNET_DATA_MIRROR", raising=False)
    yield srv
    srv.close()


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith(".part"))


def fetch(server, out, *extra):
    return invoke("data", "fetch", "--out", out, "--mirror", server.url, *extra)


# ---------------------------------------------------------------------------------------------- tests
def test_the_real_table_pins_what_was_published():
    for source in ds.SOURCES:
        assert source.url.startswith("https://") and (source.sha256 is None) == (source.size is None)
        assert source.sha256 is None or len(source.sha256) == 64
    pinned = {s.name for s in ds.SOURCES if s.sha256}
    assert pinned == {
        "MNLI.zip",
        "heuristics_evaluation_set.txt",
        "heuristics_train_set.txt",
        "QQP-clean.zip",
        "paws_wiki_labeled_final.tar.gz",
    }


STEPS = ["--set", "train.max_steps=2", "--set", "eval.every=2", "--set", "train.batch_size=8"]
STEPS += ["--set", "train.warmup_steps=1", "--json"]


def test_fetch_all_makes_a_directory_every_command_reads(server, published, tmp_path, tiny_bert_dir):
    data = tmp_path / "D"
    result = invoke("data", "fetch", "--task", "all", "--out", data, "--mirror", server.url, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["files"]["MNLI/train.tsv"] == "extracted from MNLI.zip"
    assert info["files"]["QQP/paws_qqp/dev_and_test.tsv"] == "generated: 31 examples, 1 could not be rebuilt"
    hans = published["heuristics_evaluation_set.txt"]
    assert (data / "MNLI/hans/heuristics_evaluation_set.txt").read_bytes() == hans
    assert (data / "fever/sym2/test.jsonl").read_bytes() == published["fever_symmetric_test.jsonl"]
    train_sha = sha(published["fever.train.jsonl"])
    assert f"unverified: fever.train.jsonl has no pinned hash yet; got sha256 {train_sha}" in result.stderr
    assert "srnet_cli/engine/data/sources.py" in result.stderr
    assert leftovers(data) == []
    assert len(server.requests) == len(ds.SOURCES)

    again = fetch(server, data, "--json")
    assert again.exit_code == 0, again.output
    assert set(json.loads(again.stdout)["files"].values()) == {"present"}
    assert len(server.requests) == len(ds.SOURCES)  # nothing downloaded twice

    expected_sets = {"mnli": {"dev_matched", "dev_mismatched", "hans"}, "qqp": {"dev", "paws_qqp", "paws_wiki"}}
    expected_sets["fever"] = {"dev", "fever_sym1", "fever_sym2"}
    for task in ("mnli", "qqp", "fever"):
        bias = invoke("bias-model", "--task", task, "--data-dir", data, "--out", tmp_path / f"bias-{task}", "--json")
        assert bias.exit_code == 0, (task, bias.output)
        run = invoke(
            "finetune", "--task", task, "--model", tiny_bert_dir, "--data-dir", data, "--out", tmp_path / task, *STEPS
        )
        assert run.exit_code == 0, (task, run.output)
        assert set(json.loads(run.stdout)["metrics"]) == expected_sets[task]
        model = tmp_path / task / "model"
        evaluated = invoke("evaluate", "--task", task, "--model", model, "--data-dir", data, "--json")
        assert evaluated.exit_code == 0, (task, evaluated.output)
        assert set(json.loads(evaluated.stdout)["metrics"]) == expected_sets[task]
    paws = load_split("qqp", "paws_qqp", data)
    assert len(paws.examples) == 31 and paws.examples[-1].id == "31"


def test_paws_qqp_is_rebuilt_as_googles_script_writes_it():
    qqp = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\tWhere is the café ?\tIs it 'open' ?\t0\n"
    tokens = ds.qqp_question_tokens([qqp.encode()], str.split)
    index = "id\tqid1\tsentence1\tqid2\tsentence2\tlabel\n7\t1\t3/1/2/0/4\t2\t0/(1, 3):(2, 2)\t1\n8\t3\t0\t2\t0\t0\n"
    data, built, failed = ds.generate_paws_qqp(index.encode(), tokens)
    assert (built, failed) == (1, 1)
    expected = (
        "id\tsentence1\tsentence2\tlabel\r\n7\tb'caf\\xc3\\xa9 is the Where ?'\tb\"Is caf\\xc3\\xa9'open'\"\t1\r\n"
    )
    assert data.decode() == expected


def test_paws_qqp_output_reads_back_decoded(tmp_path):
    tokens = {5: ["Wie", "heißt", "du", "?"], 6: ["Tom", "'s", "car"]}
    index = b"id\tqid1\tsentence1\tqid2\tsentence2\tlabel\n1\t5\t1/0/2/3\t6\t0/1/2\t0\n"
    data, _, _ = ds.generate_paws_qqp(index, tokens)
    (tmp_path / "QQP/paws_qqp").mkdir(parents=True)
    (tmp_path / "QQP/paws_qqp/dev_and_test.tsv").write_bytes(data)
    example = load_split("qqp", "paws_qqp", tmp_path).examples[0]
    assert (example.text_a, example.text_b, example.label) == ("heißt Wie du ?", "Tom 's car", "not_duplicate")


def test_a_corrupted_download_is_refused_with_both_hashes(server, published, tmp_path):
    source = next(s for s in ds.SOURCES if s.name == "heuristics_evaluation_set.txt")
    bad = b"x" + published[source.name][1:]
    server.files[url_path(source)] = bad
    result = fetch(server, tmp_path / "D", "--task", "mnli")
    assert result.exit_code == 1
    assert "heuristics_evaluation_set.txt" in result.stderr and source.url in result.stderr
    assert sha(bad) in result.stderr and source.sha256 in result.stderr
    assert not (tmp_path / "D/MNLI/hans/heuristics_evaluation_set.txt").exists()
    assert leftovers(tmp_path / "D") == []
    assert "Traceback" not in result.output


def test_a_truncated_download_is_refused_and_leaves_nothing(server, published, tmp_path):
    source = next(s for s in ds.SOURCES if s.name == "fever.dev.jsonl")
    server.truncate.add(url_path(source))
    result = fetch(server, tmp_path / "D", "--task", "fever")
    assert result.exit_code == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "fever.dev.jsonl" in error[0] and "dropbox.com" in error[0]
    assert not (tmp_path / "D/fever/fever.dev.jsonl").exists() and leftovers(tmp_path / "D") == []


def test_a_404_names_the_file_and_the_way_out(server, tmp_path):
    source = next(s for s in ds.SOURCES if s.name == "paws_qqp.tar.gz")
    del server.files[url_path(source)]
    result = fetch(server, tmp_path / "D", "--task", "qqp")
    assert result.exit_code == 1
    assert "paws_qqp.tar.gz" in result.stderr and "HTTP 404" in result.stderr
    hint = next(line for line in result.stderr.splitlines() if line.startswith("hint:"))
    assert "--mirror" in hint and "--source-dir" in hint
    assert not (tmp_path / "D/downloads/paws_qqp.tar.gz").exists() and leftovers(tmp_path / "D") == []


def test_no_network_is_one_line_and_leaves_no_directory(server, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    result = invoke("data", "fetch", "--task", "mnli", "--out", tmp_path / "D", "--mirror", closed)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and "MNLI.zip" in lines[0] and "dl.fbaipublicfiles.com" in lines[0]
    assert not (tmp_path / "D").exists()


def test_a_leftover_part_file_is_replaced_never_kept(server, published, tmp_path):
    hans = tmp_path / "D/MNLI/hans"
    hans.mkdir(parents=True)
    (hans / ".heuristics_train_set.txt.part").write_bytes(b"half of an earlier download")
    result = fetch(server, tmp_path / "D", "--task", "mnli")
    assert result.exit_code == 0, result.output
    assert (hans / "heuristics_train_set.txt").read_bytes() == published["heuristics_train_set.txt"]
    assert leftovers(tmp_path / "D") == []


def test_source_dir_files_are_verified_not_downloaded(server, published, tmp_path):
    mine = tmp_path / "mine"
    (mine / "hans").mkdir(parents=True)
    (mine / "MNLI.zip").write_bytes(published["MNLI.zip"])
    for name in ("heuristics_evaluation_set.txt", "heuristics_train_set.txt"):
        (mine / "hans" / name).write_bytes(published[name])
    result = fetch(server, tmp_path / "D", "--task", "mnli", "--source-dir", mine, "--json")
    assert result.exit_code == 0, result.output
    assert server.requests == []
    assert json.loads(result.stdout)["files"]["downloads/MNLI.zip"] == f"copied from {mine / 'MNLI.zip'}"
    (mine / "hans/heuristics_train_set.txt").write_bytes(b"not the file")
    refused = fetch(server, tmp_path / "D2", "--task", "mnli", "--source-dir", mine)
    assert refused.exit_code == 1 and sha(b"not the file") in refused.stderr


def test_a_users_differing_file_is_not_replaced_without_force(server, published, tmp_path):
    target = tmp_path / "D/fever/sym2/test.jsonl"
    target.parent.mkdir(parents=True)
    target.write_text("my own edit\n")
    refused = fetch(server, tmp_path / "D", "--task", "fever")
    assert refused.exit_code == 1 and "--force" in refused.stderr and "sym2/test.jsonl" in refused.stderr
    assert target.read_text() == "my own edit\n"
    assert not (tmp_path / "D/fever/fever.train.jsonl").exists()  # refused before the first write
    forced = fetch(server, tmp_path / "D", "--task", "fever", "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() == published["fever_symmetric_test.jsonl"]


def test_the_mirror_can_come_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SRNET_DATA_MIRROR", server.url)
    result = invoke("data", "fetch", "--task", "mnli", "--out", tmp_path / "D")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "D/MNLI/dev_mismatched.tsv").is_file()


def test_hans_without_data_dir_is_an_error_naming_data_fetch(monkeypatch):
    assert not any(name == "jhu-cogsci/hans" for name, _, _ in HUB_SPLITS.values())
    with pytest.raises(DataError) as info:
        load_split("mnli", "hans", None)
    assert not isinstance(info.value, MissingDataError)  # a missing OOD set would be listed and skipped
    assert "srnet data fetch --task mnli --out D" in info.value.hint and "--data-dir D" in info.value.hint


def test_without_data_dir_a_set_off_the_hub_stops_the_run_before_training(monkeypatch):
    from srnet_cli.engine.data.readers import Dataset, Example
    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.runs.context import NullReporter
    from srnet_cli.recipes import eval_data as common

    real = common.load_split

    def hub(task, split, data_dir, strict=False):
        if (task, split) in HUB_SPLITS:  # what the hub would give, without the network
            return Dataset(split, "hub", [Example("a", "x", "y", "entailment", 0)], n_rows=1, split=split)
        return real(task, split, data_dir, strict)

    monkeypatch.setattr(common, "load_split", hub)
    with pytest.raises(DataError, match="hans .* is not on the datasets hub"):
        common.load_eval_sets(task_spec("mnli"), None, False, NullReporter())
