"""`srnet data fetch`: download the paper's data (or take the user's copies), verify each file against its pinned
size and SHA-256, and write the original layout that every other command reads.

Every check that can refuse the run (unknown task, --source-dir, a user's file that would be replaced, NLTK for
PAWS-QQP) happens before the first write. Files are written whole or not at all (temporary name, then os.replace);
`fetch.json` in the data directory records what was written, so a re-run skips what is there and still matches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srnet_cli.engine.data import sources as ds
from srnet_cli.engine.data.download import FetchError, Got, copy_verified, download, hash_file, mirrored
from srnet_cli.errors import DataError, UsageError

RECORD = "fetch.json"
PIN_FILE = "srnet_cli/engine/data/sources.py"


@dataclass
class Plan:
    out: Path
    force: bool
    mirror: str | None
    source_dir: Path | None
    log: Callable[[str], None]
    record: dict[str, dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)  # layout path -> what happened
    notices: list[str] = field(default_factory=list)
    made_dirs: list[Path] = field(default_factory=list)


def parse_tasks(task: str) -> list[str]:
    if task == "all":
        return list(ds.FETCH_TASKS)
    if task not in ds.FETCH_TASKS:
        raise UsageError(f"--task {task!r} has no data to fetch", "use --task mnli, qqp, fever or all")
    return [task]


def run(
    task: str,
    out: Path,
    force: bool = False,
    mirror: str | None = None,
    source_dir: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    tasks = parse_tasks(task)
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory", "choose a directory for the data")
    if source_dir is not None and not source_dir.expanduser().is_dir():
        raise UsageError(f"--source-dir {source_dir} is not a directory", "pass the folder holding the files")
    plan = Plan(out, force, mirror, source_dir.expanduser() if source_dir else None, log, _read_record(out))
    sources = ds.sources_for(tasks)
    _check_existing(plan, sources)
    tokenize = ds.word_tokenizer() if "qqp" in tasks and _needs_paws_qqp(plan) else None
    try:
        for source in sources:
            _fetch_source(plan, source)
        if "qqp" in tasks:
            _paws_qqp(plan, tokenize)
    except BaseException:
        _remove_empty_dirs(plan)
        raise
    finally:
        _write_record(plan)
    return {
        "command": "data fetch",
        "tasks": tasks,
        "out": str(out),
        "files": plan.files,
        "notices": plan.notices,
        "next": f"srnet finetune --task {tasks[0]} --data-dir {out} ...",
    }


# ---------------------------------------------------------------------------------------------- checks
def _products(source: ds.Source) -> list[str]:
    return [dest for _, dest in source.members] if source.members else [source.dest]


def _known(plan: Plan, rel: str, source: ds.Source | None) -> bool:
    """An existing file srnet may keep or replace: it matches its pin (a plain download) or what fetch.json says
    srnet wrote there."""
    path = plan.out / rel
    if not path.is_file():
        return False
    got = hash_file(path)
    if source is not None and rel == source.dest and source.sha256 is not None:
        return got.sha256 == source.sha256
    entry = plan.record.get(rel)
    return entry is not None and entry.get("sha256") == got.sha256


def _check_existing(plan: Plan, sources: list[ds.Source]) -> None:
    """A file in the way that srnet did not write (or that changed since) is the user's: refused unless --force."""
    layout: list[tuple[str, ds.Source | None]] = [(rel, s) for s in sources for rel in _products(s)]
    layout += [(s.dest, s) for s in sources if s.members]
    if any(s.name == ds.PAWS_QQP_INDEX for s in sources):
        layout += [(dest, None) for _, dest in ds.PAWS_QQP_OUTPUTS]
    for rel, source in layout:
        path = plan.out / rel
        if path.is_file() and not plan.force and not _known(plan, rel, source):
            got = hash_file(path)
            raise DataError(
                f"{path} exists and is not the file srnet fetched (sha256 {got.sha256}, size {got.size})",
                "move it away, or pass --force to replace it with the verified download",
            )
        if path.exists() and not path.is_file():
            raise DataError(f"{path} is in the way and is not a file", "move it away")


def _needs_paws_qqp(plan: Plan) -> bool:
    return plan.force or not all(_present(plan, dest) for _, dest in ds.PAWS_QQP_OUTPUTS)


def _present(plan: Plan, rel: str) -> bool:
    return _known(plan, rel, None)


# ---------------------------------------------------------------------------------------------- fetching
def _hint(plan: Plan, source: ds.Source) -> str:
    pin = f"sha256 {source.sha256}" if source.sha256 else "no pinned hash yet"
    return (
        f"pass --mirror URL (a copy holding the file at URL/{source.url.split('://', 1)[-1].split('?')[0]}), or put "
        f"{source.name} ({pin}) into a folder passed as --source-dir, or at {plan.out / source.dest} yourself"
    )


def _mkdir(plan: Plan, path: Path) -> None:
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    plan.made_dirs.extend(missing)


def _remove_empty_dirs(plan: Plan) -> None:
    for path in sorted(plan.made_dirs, key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir()
        except OSError:
            pass


def _fetch_source(plan: Plan, source: ds.Source) -> None:
    products = _products(source)
    if not plan.force and all(_known(plan, rel, source) for rel in products):
        for rel in products:
            plan.files[rel] = "present"
        entry = plan.record.get(source.dest)
        if source.sha256 is None and entry:
            _note(plan, source, source.dest, Got(entry["sha256"], entry["size"]))
        return
    archive = plan.out / source.dest
    if plan.force or not (archive.is_file() and _known(plan, source.dest, source)):
        got = _obtain(plan, source, archive)
        _note(plan, source, source.dest, got)
    if source.members:
        for member, rel in source.members:
            data = ds.read_member(archive, member)
            _mkdir(plan, (plan.out / rel).parent)
            ds.write_bytes_atomic(plan.out / rel, data)
            got = Got(_sha(data), len(data))
            plan.record[rel] = {"sha256": got.sha256, "size": got.size, "from": f"{source.name}:{member}"}
            plan.files[rel] = f"extracted from {source.name}"
    else:
        plan.files[source.dest] = plan.files.get(source.dest, "present")


def _obtain(plan: Plan, source: ds.Source, dest: Path) -> Got:
    _mkdir(plan, dest.parent)
    hint = _hint(plan, source)
    local = _local_copy(plan, source)
    if local is not None:
        plan.log(f"verifying {local}")
        got = copy_verified(local, dest, source.size, source.sha256, hint)
        plan.files[source.dest] = f"copied from {local}"
    else:
        url = mirrored(source.url, plan.mirror)
        plan.log(f"downloading {url}")
        got = download(url, dest, source.size, source.sha256, hint, origin=source.url)
        plan.files[source.dest] = "downloaded"
    plan.record[source.dest] = {"sha256": got.sha256, "size": got.size, "from": source.url}
    return got


def _local_copy(plan: Plan, source: ds.Source) -> Path | None:
    if plan.source_dir is None:
        return None
    direct = plan.source_dir / source.name
    if direct.is_file():
        return direct
    found = sorted(p for p in plan.source_dir.rglob(source.name) if p.is_file())
    return found[0] if found else None


def _note(plan: Plan, source: ds.Source, rel: str, got: Got) -> None:
    if source.sha256 is None:
        text = (
            f"unverified: {source.name} has no pinned hash yet; got sha256 {got.sha256} (size {got.size}) — "
            f"pin it in {PIN_FILE}"
        )
        plan.notices.append(text)
        plan.record[rel]["verified"] = False
    else:
        plan.record[rel]["verified"] = True


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- PAWS-QQP
def _paws_qqp(plan: Plan, tokenize: ds.Tokenize | None) -> None:
    if tokenize is None:  # every output is there and matches what was generated
        for _, rel in ds.PAWS_QQP_OUTPUTS:
            plan.files[rel] = "present"
        return
    plan.log("generating PAWS-QQP from QQP and the PAWS-QQP index files")
    tokens = ds.qqp_question_tokens(((plan.out / rel).read_bytes() for rel in ds.QQP_CORPUS), tokenize)
    archive = plan.out / f"downloads/{ds.PAWS_QQP_INDEX}"
    for member, rel in ds.PAWS_QQP_OUTPUTS:
        data, built, failed = ds.generate_paws_qqp(ds.read_member(archive, member), tokens)
        if built == 0:
            raise FetchError(
                f"PAWS-QQP {member}: none of its {failed} examples could be rebuilt from {ds.QQP_CORPUS[0]}",
                "the QQP files or the tokenizer differ from the ones the index was made with (NLTK 3.2.5)",
            )
        _mkdir(plan, (plan.out / rel).parent)
        ds.write_bytes_atomic(plan.out / rel, data)
        plan.record[rel] = {"sha256": _sha(data), "size": len(data), "from": f"generated from {member}"}
        plan.files[rel] = f"generated: {built} examples" + (f", {failed} could not be rebuilt" if failed else "")


# ---------------------------------------------------------------------------------------------- record
def _read_record(out: Path) -> dict[str, dict[str, Any]]:
    path = out / RECORD
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise DataError(f"{path} is not srnet's fetch record", "move it away, or fetch into another --out") from None
    return files if isinstance(files, dict) else {}


def _write_record(plan: Plan) -> None:
    if not plan.record:
        return
    text = json.dumps({"format": "srnet-fetch/1", "files": plan.record}, indent=2) + "\n"
    ds.write_bytes_atomic(plan.out / RECORD, text.encode("utf-8"))
