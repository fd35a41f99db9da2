"""End-to-end smoke runs of every command on a tiny random model (CPU, a few steps each)."""

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.data.synth_nli import HANS_SUBCASES
from srnet_cli.engine.runs.context import RecordingReporter, RunContext
from srnet_cli.errors import SrnetError
from srnet_cli.recipes import demo, demo_pool, finetune

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_bias_model_command(synth_dir, tmp_path):
    result = invoke(
        "bias-model", "--task", "mnli", "--kind", "overlap", "--data-dir", synth_dir, "--out", tmp_path / "b", "--json"
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert set(results["metrics"]) == {"train", "dev_matched", "dev_mismatched", "hans"}
    assert (tmp_path / "b" / "bias.json").is_file()


def test_finetune_poe_then_evaluate(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    run = tmp_path / "poe"
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--out",
        run,
        "--set",
        "train.max_steps=6",
        "--set",
        "eval.every=3",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.warmup_steps=1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["loss"] == "poe" and results["steps"] == 6 and results["best_step"] in (3, 6)
    for name in (
        "preset.toml",
        "env.json",
        "metrics.jsonl",
        "results.json",
        "model/config.json",
        "model/model.safetensors",
        "predictions/hans_preds.txt",
        "predictions/dev_matched.tsv",
    ):
        assert (run / name).is_file(), name
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [3, 6]
    assert json.loads((run / "results.json").read_text()) == results
    hans_lines = (run / "predictions/hans_preds.txt").read_text().splitlines()
    assert hans_lines[0] == "pairID,gold_label" and len(hans_lines) == 49
    assert hans_lines[1].split(",")[1] in {"contradiction", "entailment", "neutral"}
    assert 'kind = "poe"' in (run / "preset.toml").read_text()
    assert json.loads((run / "env.json").read_text())["seed"] == 1

    # The run directory re-runs from its own preset (dry-run proves it validates).
    again = invoke("finetune", "--preset", run / "preset.toml", "--dry-run")
    assert again.exit_code == 0, again.output

    evaluated = invoke(
        "evaluate",
        "--model",
        run / "model",
        "--task",
        "mnli",
        "--data-dir",
        synth_dir,
        "--json",
        "--out",
        tmp_path / "eval",
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert set(metrics) == {"dev_matched", "dev_mismatched", "hans"}
    # same checkpoint, same numbers: the run reused the selection-time dev_matched numbers, evaluate recomputed them
    assert metrics == results["metrics"]
    for name in ("dev_matched.tsv", "hans_preds.txt"):
        assert (run / "predictions" / name).read_text() == (tmp_path / "eval" / "predictions" / name).read_text()
    assert set(metrics["hans"]["heuristics"]) == {"lexical_overlap", "subsequence", "constituent"}
    assert (tmp_path / "eval" / "predictions" / "hans_preds.txt").is_file()

    # Never overwrite silently.
    clash = invoke("finetune", "--task", "mnli", "--model", tiny_bert_dir, "--data-dir", synth_dir, "--out", run)
    assert clash.exit_code == 1 and "is not empty" in clash.stderr


def test_finetune_ce_roberta_records_progress(tiny_roberta_dir, synth_dir, tmp_path):
    from srnet_cli.config.loader import load_preset

    preset, _, _ = load_preset(
        "finetune",
        "ce-mnli",
        ["train.max_steps=4", "eval.every=2", "train.batch_size=8", "train.warmup_steps=0"],
        {"model.name_or_path": str(tiny_roberta_dir), "data.dir": str(synth_dir)},
    )
    reporter = RecordingReporter()
    results = finetune.run(preset, RunContext(tmp_path / "ce", "cpu", reporter)).json_dict()
    assert results["metrics"]["dev_matched"]["n"] == 60
    logs = reporter.logs()
    assert any(line.startswith("mnli-train: 240 examples") for line in logs)
    assert sum(line.startswith("step ") for line in logs) == 2
    assert sum(kind == "advance" for kind, _ in reporter.events) == 4


def test_finetune_rejects_misaligned_bias_before_loading_a_model(tiny_bert_dir, synth_dir, tmp_path):
    np.save(tmp_path / "log_probs.npy", np.log(np.full((5, 3), 1 / 3)))
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        tmp_path / "log_probs.npy",
        "--out",
        tmp_path / "run",
    )
    assert result.exit_code == 1
    assert "has 5 rows but" in result.stderr and "first id without a row: train-5" in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written


def test_finetune_reports_malformed_rows(tiny_bert_dir, synth_dir, tmp_path):
    data = tmp_path / "data" / "MNLI"
    (data / "hans").mkdir(parents=True)
    for name in ("dev_matched.tsv", "dev_mismatched.tsv", "hans/heuristics_evaluation_set.txt"):
        (data / name).write_text((synth_dir / "MNLI" / name).read_text())
    lines = (synth_dir / "MNLI/train.tsv").read_text().splitlines()
    (data / "train.tsv").write_text("\n".join(lines[:20] + ["bad\trow"] + lines[20:40]) + "\n")
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        data.parent,
        "--out",
        tmp_path / "r",
        "--set",
        "train.max_steps=1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert "1 malformed rows skipped (first: line 21" in result.stderr
    data_report = json.loads(result.stdout)["data"]
    assert (data_report["train"], data_report["train_malformed"]) == (39, 1)
    assert data_report["train_rows"] == {
        "source": str(data / "train.tsv"),
        "rows": 40,
        "used": 39,
        "skipped": 1,
        "first_skipped_lines": [21],
    }
    assert data_report["missing"] == [] and data_report["sets"]["hans"]["rows"] == 48
    strict = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        data.parent,
        "--out",
        tmp_path / "s",
        "--set",
        "data.strict=true",
    )
    assert strict.exit_code == 1 and "train.tsv:21: expected 12 tab-separated fields" in strict.stderr


def test_evaluate_missing_model_and_missing_data(tmp_path, synth_dir):
    result = invoke("evaluate", "--model", tmp_path / "nope", "--task", "mnli", "--data-dir", synth_dir)
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = invoke("evaluate", "--model", "minilm", "--task", "mnli", "--data-dir", tmp_path)
    assert result.exit_code == 1 and "data file not found" in result.stderr


STUDY_RUNS = [
    "finetune-ce",
    "finetune-poe",
    "a-imp-ce",
    "a-imp-poe",
    "a-mask-ce-50",
    "a-mask-ce-60",
    "a-mask-poe-50",
    "a-mask-poe-60",
    "b-lt-imp-poe",
    "b-retrain-lt-poe-50",
    "b-retrain-mask-poe-50-ce",
    "b-retrain-mask-poe-50-poe",
    "c-mask-pt-poe-50",
    "ood-mask-ce-50",
    "gradual-mask-poe-50-60",
    "s-mask-poe-50",
    "s-retrain-poe-50",
]


def tiny_demo(model, **kw):
    kw = {"workers": 1, **kw}  # in this process: a worker's start-up (~6 s) would dwarf the tiny stages
    return demo.DemoSpec(
        model=str(model), steps=3, search_steps=4, imp_steps=10, train_size=60, dev_size=12, hans_per_subcase=2, **kw
    )


def test_demo_stages_wait_for_their_inputs_and_the_longest_chain_starts_first():
    spec = demo.DemoSpec(mixed_precision="no")
    jobs = [demo._job(s, i, 19, spec, Path("/o"), Path("/d"), Path("/b")) for i, s in enumerate(demo.stages(spec))]
    needs = {job.name: job.needs for job in jobs}
    assert needs["finetune-ce"] == needs["finetune-poe"] == needs["b-lt-imp-poe"] == needs["c-mask-pt-poe-50"] == ()
    assert needs["a-mask-poe-60"] == needs["ood-mask-ce-50"] == needs["gradual-mask-poe-50-60"] == ("finetune-ce",)
    assert needs["b-retrain-lt-poe-50"] == ("b-lt-imp-poe",)
    assert needs["b-retrain-mask-poe-50-ce"] == ("a-mask-poe-50",)
    assert needs["s-retrain-poe-50"] == ("finetune-ce", "s-mask-poe-50")
    # steps: lottery-ticket search 50 + its retrain 2 x 200; CE model 200 + the structured search 100 + its retrain
    # 0.75 x 200; the PoE mask of (a) 100 + its retrain 0.35 x 200; the PoE model 1.5 x 200
    priority = demo_pool.priorities(jobs)
    assert priority["b-lt-imp-poe"] == 450 and priority["finetune-ce"] == 450 and priority["a-mask-poe-50"] == 170
    assert priority["s-mask-poe-50"] == 250 and priority["finetune-poe"] == 300 and priority["a-mask-ce-50"] == 100
    assert priority["c-mask-pt-poe-50"] == 100 and priority["b-retrain-mask-poe-50-ce"] == 70
    pending, done, order = list(jobs), set(), []
    while pending:  # one worker, each job done as soon as it starts: the order a free worker takes them in
        job = demo_pool.next_ready(pending, done, priority)
        pending.remove(job)
        done.add(job.name)
        order.append(job.name)
    # the tie at 450 goes to the CE model, earlier in plan order; the shortest stages go last, so the two workers
    # finish close together
    assert order[:7] == ["finetune-ce", "b-lt-imp-poe", "b-retrain-lt-poe-50", "finetune-poe", "s-mask-poe-50",
                         "a-mask-poe-50", "s-retrain-poe-50"]  # fmt: skip
    assert order[-2:] == ["b-retrain-mask-poe-50-ce", "b-retrain-mask-poe-50-poe"]
    assert order[7:-2] == [job.name for job in jobs if priority[job.name] == 100]
    with pytest.raises(ValueError, match="needs"):
        demo_pool.priorities(jobs[2:])  # without the CE model its subnetworks cannot run


def test_demo_ood_search_sees_each_hans_training_pair_three_times_as_the_papers_three_epochs():
    spec = demo.DemoSpec()
    stage = next(s for s in demo.stages(spec) if s.section == demo.OOD)
    copies = stage.overrides["search"]["ood_copies"]
    hans = len(HANS_SUBCASES) * spec.hans_per_subcase  # the HANS-format training set: as many pairs as evaluation
    seen = spec.search_steps * spec.batch_size * copies * hans / (spec.train_size + copies * hans)
    assert seen / hans == pytest.approx(3.0, abs=0.1)


def test_demo_in_two_worker_processes_gives_the_sequential_table(tiny_bert_dir, tmp_path):
    reporter = RecordingReporter()
    parallel = demo.run(tiny_demo(tiny_bert_dir, workers=2), tmp_path / "two", "cpu", reporter)
    sequential = demo.run(tiny_demo(tiny_bert_dir), tmp_path / "one", "cpu", RecordingReporter())
    assert (parallel["workers"], sequential["workers"]) == (2, 1)
    assert parallel["rows"] == sequential["rows"]  # same seeds, same stages: the same numbers, in plan order
    assert parallel["findings"] == sequential["findings"]
    logs = reporter.logs()
    assert "running 17 stages 2 at a time, 1 thread(s) each (--workers 1: in order)" in logs
    assert any(line.startswith("finetune-ce: training 3 steps") for line in logs)  # a worker's log, by stage
    assert any(line.startswith("b-retrain-lt-poe-50: done in") for line in logs)
    assert "s (2 stages at a time, 1 thread(s) each)." in (tmp_path / "two" / "report.md").read_text()
    assert "s (one stage at a time)." in (tmp_path / "one" / "report.md").read_text()


def test_stage_lines_log_each_stage_by_name_with_a_line_per_tenth_of_its_training():
    reporter = RecordingReporter()
    lines = demo_pool.StageLines(reporter)
    lines.show("a", "start", (20, "train"))
    lines.show("b", "log", "hello")
    for step in range(1, 21):
        lines.show("a", "advance", (1, {"loss": 0.5}))
        if step == 10:  # an evaluation inside training draws no lines
            lines.show("a", "start", (3, "eval"))
            lines.show("a", "advance", (3, {}))
            lines.show("a", "end", None)
    assert reporter.logs()[0] == "b: hello"
    assert reporter.logs()[1:] == [f"a: train {n}/20 loss 0.5" for n in range(2, 21, 2)]


def _dies(job, device, reporter):  # a worker killed by the system (out of memory) mid-stage
    import os

    reporter.log("about to die")
    os._exit(9)


def test_a_worker_that_dies_is_reported_by_stage_with_a_fix(tmp_path):
    jobs = [demo_pool.Job("only-stage", "1/1 only", "finetune", None, tmp_path / "x")]
    with pytest.raises(SrnetError) as raised:
        demo_pool.run_jobs(jobs, _dies, "cpu", RecordingReporter(), workers=2)
    assert "died while running only-stage" in raised.value.message and "--workers 1" in raised.value.hint


def test_a_stage_failing_in_a_worker_reports_its_own_error(tiny_bert_dir, tmp_path):
    spec = tiny_demo(tiny_bert_dir, dense_only=True, workers=2, mixed_precision="no")
    jobs = [
        demo._job(s, i, 4, spec, tmp_path, tmp_path / "none", tmp_path / "b") for i, s in enumerate(demo.stages(spec))
    ]
    with pytest.raises(SrnetError) as raised:  # no data directory, no bias file: the recipe's own error, whole
        demo_pool.run_jobs(jobs, demo.run_stage, "cpu", RecordingReporter(), workers=2)
    assert str(tmp_path) in raised.value.message and raised.value.hint and type(raised.value) is not SrnetError
    assert not (tmp_path / "finetune-ce").exists()  # the failed stage's directory is tidied away by its worker


def test_demo_runs_the_whole_study_on_a_tiny_model(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out, as `srnet demo` is usually run
    summary = demo.run(tiny_demo(tiny_bert_dir), Path("demo"), "cpu", RecordingReporter())
    assert sorted(summary["stage_seconds"]) == sorted(STUDY_RUNS)
    for run in STUDY_RUNS:
        assert (tmp_path / "demo" / run / "results.json").is_file(), run
    methods = [(r["method"], round(r["sparsity"], 1)) for r in summary["rows"]]
    assert methods == [
        ("bias-only (overlap)", 0.0),
        ("CE fine-tuned", 0.0),
        ("PoE fine-tuned", 0.0),
        ("IMP CE", 0.5),
        ("IMP CE", 0.6),
        ("IMP PoE", 0.5),
        ("IMP PoE", 0.6),
        ("mask training CE", 0.5),
        ("mask training CE", 0.6),
        ("mask training PoE", 0.5),
        ("mask training PoE", 0.6),
        ("lottery-ticket IMP PoE, retrained PoE", 0.5),
        ("PoE mask (a), retrained CE", 0.5),
        ("PoE mask (a), retrained PoE", 0.5),
        ("mask training PoE on pre-trained", 0.5),
        ("mask training CE + OOD train data", 0.5),
        ("mask training PoE, gradual 50%->60%", 0.6),
        ("structured PoE (heads + neurons), retrained PoE", 0.5),
    ]
    # The table's numbers are the runs' own results (the IMP rows: its evaluated levels).
    mask = json.loads((tmp_path / "demo" / "a-mask-poe-60" / "results.json").read_text())
    row = next(r for r in summary["rows"] if r["run"] == "a-mask-poe-60")
    assert row["hans"] == mask["metrics"]["hans"]["acc"] and row["mnli_m"] == mask["metrics"]["dev_matched"]["acc"]
    imp = json.loads((tmp_path / "demo" / "a-imp-poe" / "results.json").read_text())
    assert [level["level"] for level in imp["levels"]] == pytest.approx([0.5, 0.6])
    assert len(list((tmp_path / "demo" / "a-imp-poe" / "masks").glob("level-*.safetensors"))) == 6
    retrained = json.loads((tmp_path / "demo" / "b-retrain-mask-poe-50-ce" / "results.json").read_text())
    assert retrained["mask_method"] == "mask-train poe" and retrained["loss"] == "ce"
    lt = json.loads((tmp_path / "demo" / "b-retrain-lt-poe-50" / "results.json").read_text())
    assert lt["mask_method"] == "lottery-ticket IMP poe"
    assert json.loads((tmp_path / "demo" / "summary.json").read_text()) == summary
    saved = tomllib.loads((tmp_path / "demo" / "a-mask-poe-60" / "preset.toml").read_text())
    assert Path(saved["data"]["dir"]).is_absolute() and Path(saved["model"]["name_or_path"]).is_absolute()
    text = (tmp_path / "demo" / "report.md").read_text()
    assert "| (b) subnetworks fine-tuned in isolation | PoE mask (a), retrained CE | 50% |" in text
    assert (tmp_path / "demo" / "mnli.png").stat().st_size > 10_000
    assert len(summary["findings"]) == 14 and all(f["claim"] in text for f in summary["findings"])
    # the structured SRNet, cut into a compact model and timed against the dense CE model
    compact = summary["compact"]
    assert compact["parameters"] < compact["dense_parameters"] and compact["speedup"] > 0
    assert (tmp_path / "demo" / "s-retrain-poe-50" / "model" / "srnet_compact.json").is_file()  # retrained compact
    assert "The structured SRNet as a compact model" in text


def test_demo_findings_are_checked_against_the_numbers():
    demo_task = demo.DEMO_TASKS["nli"]
    spec = demo.DemoSpec(sparsities=(0.5, 0.7))

    def row(method, sparsity, mnli_m, hans, section="x"):
        return {"section": section, "method": method, "sparsity": sparsity, "mnli_m": mnli_m, "hans": hans}

    rows = [
        row("CE fine-tuned", 0, 0.90, 0.55),
        row("PoE fine-tuned", 0, 0.85, 0.54),
        row("mask training PoE", 0.5, 0.856, 0.60),
        row("IMP PoE", 0.5, 0.86, 0.62),
        row("mask training PoE", 0.7, 0.854, 0.56),
        row("mask training CE", 0.7, 0.88, 0.50),
        row("mask training PoE, gradual 50%->70%", 0.7, 0.86, 0.56, demo.GRADUAL),
    ]
    found = {f["claim"]: f["holds"] for f in demo.findings(rows, demo_task, spec)}
    assert found["a debiasing loss (PoE) makes the full model more robust out of distribution"] is False
    # 95% of 0.90 is 0.855: 0.856 passes at 50%, 0.854 fails at 70%
    assert found[
        "SRNets exist at 50%: a PoE subnetwork of the CE model keeps >= 95% of its mnli_m and beats it on hans"
    ]
    assert not found[
        "SRNets exist at 70%: a PoE subnetwork of the CE model keeps >= 95% of its mnli_m and beats it on hans"
    ]
    assert found["mask training finds more robust 50% subnetworks than IMP (PoE)"] is False
    assert found["the debiasing loss matters in the search too (70%, mask training)"] is True
    assert found["gradual sparsity (50%->70%) beats a fixed 70% search"] is True  # 0.86 + 0.56 > 0.854 + 0.56
    assert len(found) == 6  # no retrained, pre-trained or OOD-data rows: those claims are not made


@pytest.mark.parametrize("task,bias,ood", [("paraphrase", "overlap", "paws_qqp_f1"), ("fact", "claim-only", "sym1")])
def test_demo_on_the_other_benchmarks(task, bias, ood, tiny_bert_dir, tmp_path):
    summary = demo.run(tiny_demo(tiny_bert_dir, task=task), tmp_path / "demo", "cpu", RecordingReporter())
    rows = {r["run"]: r for r in summary["rows"]}
    assert len(summary["rows"]) == 18 and rows["bias"]["method"] == f"bias-only ({bias})"
    assert all(v is not None for row in summary["rows"] for v in row.values())
    for run in ("finetune-poe", "a-mask-poe-50", "c-mask-pt-poe-50", "ood-mask-ce-50"):
        results = json.loads((tmp_path / "demo" / run / "results.json").read_text())
        name, metric = summary["columns"][ood].split(".")
        assert rows[run][ood] == results["metrics"][name][metric] and results["task"] == demo.DEMO_TASKS[task].task


def test_demo_dense_only_and_quick(tiny_bert_dir, tmp_path):
    summary = demo.run(tiny_demo(tiny_bert_dir, dense_only=True), tmp_path / "demo", "cpu", RecordingReporter())
    assert [r["method"] for r in summary["rows"]] == ["bias-only (overlap)", "CE fine-tuned", "PoE fine-tuned"]
    assert len(summary["findings"]) == 1
    quick, full = demo.quick(demo.DemoSpec()), demo.DemoSpec()
    assert quick.steps < full.steps and quick.search_steps < full.search_steps and quick.train_size < full.train_size


@pytest.mark.parametrize("native", [True, False])
def test_demo_precision_is_bf16_only_on_a_cpu_with_native_bf16_and_keeps_an_explicit_choice(native, monkeypatch):
    import torch

    # an AVX2-only CPU emulates bf16 (measured ~100x slower than fp32): auto must fall back to fp32 there
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert demo.DemoSpec().mixed_precision == "auto"
    assert demo._resolve_precision(demo.DemoSpec(), "cpu").mixed_precision == ("bf16" if native else "no")
    assert demo._resolve_precision(demo.DemoSpec(mixed_precision="no"), "cpu").mixed_precision == "no"
    assert demo._resolve_precision(demo.DemoSpec(mixed_precision="bf16"), "cpu").mixed_precision == "bf16"


def test_bf16_on_a_cpu_without_native_bf16_is_a_warning(monkeypatch):
    import torch

    from srnet_cli.engine.runs.devices import slow_precision_note

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    note = slow_precision_note(torch.device("cpu"), "bf16")
    assert note is not None and "no native bf16" in note and "--mixed-precision no" in note
    assert slow_precision_note(torch.device("cpu"), "no") is None
    assert slow_precision_note("cuda", "bf16") is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert slow_precision_note(torch.device("cpu"), "bf16") is None


@pytest.mark.parametrize("precision,message", [("fp8", "'fp8' is not a precision"), ("fp16", "fp16 needs a CUDA")])
def test_demo_refuses_a_bad_precision_before_writing_anything(precision, message, tmp_path):
    result = invoke("demo", "--quick", "--device", "cpu", "--mixed-precision", precision, "--out", tmp_path / "d")
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


def test_slow_starting_demo_stages_get_their_longer_budget(tmp_path):
    spec = demo.DemoSpec(mixed_precision="bf16")
    plan = {stage.name: stage for stage in demo.stages(spec)}
    lt = demo._preset(plan["b-retrain-lt-poe-50"], spec, tmp_path, tmp_path / "data", tmp_path / "bias.json")
    assert (lt.train.max_steps, lt.train.lr) == (spec.steps * spec.lt_retrain_factor, spec.lt_retrain_lr)
    assert lt.eval.every == -(-lt.train.max_steps // 3)  # still three evaluations
    pt = demo._preset(plan["c-mask-pt-poe-50"], spec, tmp_path, tmp_path / "data", tmp_path / "bias.json")
    assert pt.train.max_steps == spec.search_steps * spec.pt_search_factor
    ce = demo._preset(plan["b-retrain-mask-poe-50-ce"], spec, tmp_path, tmp_path / "data", tmp_path / "bias.json")
    assert (ce.train.max_steps, ce.train.lr) == (70, spec.lr)  # 0.35 x 200
    poe = demo._preset(plan["finetune-poe"], spec, tmp_path, tmp_path / "data", tmp_path / "bias.json")
    assert (poe.train.max_steps, poe.eval.every) == (300, 100)  # 1.5 x 200, three evaluations
    full_ce = demo._preset(plan["finetune-ce"], spec, tmp_path, tmp_path / "data", tmp_path / "bias.json")
    assert full_ce.train.max_steps == spec.steps == 200
    # --steps scales every budget derived from it
    short = replace(spec, steps=100)
    plan = {stage.name: stage for stage in demo.stages(short)}
    budgets = {name: demo._preset(plan[name], short, tmp_path, tmp_path / "d", tmp_path / "b.json").train.max_steps
               for name in ("finetune-ce", "finetune-poe", "b-retrain-mask-poe-50-poe", "b-retrain-lt-poe-50",
                            "s-retrain-poe-50")}  # fmt: skip
    assert budgets == {"finetune-ce": 100, "finetune-poe": 150, "b-retrain-mask-poe-50-poe": 35,
                       "b-retrain-lt-poe-50": 200, "s-retrain-poe-50": 75}  # fmt: skip


def test_finetune_with_reweighting(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--loss",
        "reweight",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--out",
        tmp_path / "rw",
        "--set",
        "train.max_steps=3",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.warmup_steps=0",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"] == "reweight"
    assert 'kind = "reweight"' in (tmp_path / "rw" / "preset.toml").read_text()


def test_mixed_precision_bf16_on_cpu_and_fp16_needs_a_gpu(tiny_bert_dir, synth_dir, tmp_path):
    import torch

    args = [
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--set",
        "train.max_steps=2",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.warmup_steps=0",
        "--json",
    ]
    result = invoke(*args, "--mixed-precision", "bf16", "--out", tmp_path / "bf16")
    assert result.exit_code == 0, result.output
    assert 'mixed_precision = "bf16"' in (tmp_path / "bf16" / "preset.toml").read_text()
    if not torch.cuda.is_available():
        fp16 = invoke(*args, "--mixed-precision", "fp16", "--out", tmp_path / "fp16")
        assert fp16.exit_code == 2 and "fp16 needs a CUDA device" in fp16.stderr
        assert not (tmp_path / "fp16").exists()


def test_seeds_run_into_seed_dirs_and_summarise(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    import statistics

    fast = ["--set", "train.max_steps=2", "--set", "train.batch_size=8", "--set", "train.warmup_steps=0"]
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--seeds",
        "3,4",
        "--out",
        tmp_path / "ce",
        *fast,
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["seeds"] == [3, 4] and json.loads((tmp_path / "ce" / "summary.json").read_text()) == summary
    runs = [json.loads((tmp_path / "ce" / f"seed-{s}" / "results.json").read_text()) for s in (3, 4)]
    assert [r["seed"] for r in runs] == [3, 4]
    values = [r["metrics"]["hans"]["acc"] for r in runs]
    assert summary["metrics"]["hans.acc"]["mean"] == pytest.approx(statistics.fmean(values))
    assert summary["metrics"]["hans.acc"]["std"] == pytest.approx(statistics.stdev(values))
    # `{seed}` in a path picks each seed's own model: mask training on both CE runs.
    masked = invoke(
        "mask-train",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--bias",
        bias_file,
        "--model",
        tmp_path / "ce" / "seed-{seed}" / "model",
        "--data-dir",
        synth_dir,
        "--seeds",
        "3,4",
        "--out",
        tmp_path / "mt",
        *fast,
        "--json",
    )
    assert masked.exit_code == 0, masked.output
    for s in (3, 4):
        preset = (tmp_path / "mt" / f"seed-{s}" / "preset.toml").read_text()
        assert f"seed-{s}/model" in preset and f"seed = {s}" in preset
    both = invoke("finetune", "--task", "mnli", "--seed", "1", "--seeds", "1,2", "--out", tmp_path / "x")
    assert both.exit_code == 2 and "--seed and --seeds both given" in both.stderr


def test_evaluate_sets_reuses_known_sets_and_predicts_the_others():
    import torch

    from srnet_cli.engine.data.batching import Encoded
    from srnet_cli.engine.data.readers import Dataset, Example
    from srnet_cli.engine.evaluation.predict import EvalSet, evaluate_sets

    class Counting(torch.nn.Module):
        calls = 0

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            Counting.calls += 1
            from types import SimpleNamespace

            return SimpleNamespace(logits=torch.tensor([[0.0, 1.0, 0.0]]).repeat(len(input_ids), 1))

    examples = [Example(str(i), "a", "b", "entailment", i) for i in range(4)]

    def eval_set(name):
        encoded = Encoded([[1, 2]] * 4, None, torch.zeros(4, dtype=torch.long), 0)
        return EvalSet(name, Dataset(name, "synthetic", examples, split=name), encoded)

    sets = [eval_set("dev_matched"), eval_set("dev_mismatched")]
    known = ({"dev_matched": {"acc": 0.25, "n": 4}}, {"dev_matched": ["neutral"] * 4})
    metrics, predictions = evaluate_sets(
        Counting(), sets, ("entailment", "neutral", "contradiction"), 8, "cpu", "mnli", known=known
    )
    assert Counting.calls == 1  # only dev_mismatched was predicted
    assert metrics["dev_matched"] == {"acc": 0.25, "n": 4} and predictions["dev_matched"] == ["neutral"] * 4
    assert metrics["dev_mismatched"]["acc"] == 0.0 and predictions["dev_mismatched"] == ["neutral"] * 4


def test_bench_timings_run_in_turn_and_each_keeps_its_fastest_round():
    from srnet_cli.recipes.bench.probes import fastest

    calls = []
    times = {"a": iter([3.0, 1.0, 2.0]), "b": iter([5.0, 6.0, 4.0])}
    rates = {"c": iter([10.0, 30.0, 20.0])}

    def step(name):
        calls.append(name)
        return {"seconds_per_step": next(times[name]), "round": len(calls)}

    def predict():
        calls.append("c")
        return {"examples_per_second": next(rates["c"])}

    a, b, c = fastest(lambda: step("a"), lambda: step("b"), predict, rounds=3)
    assert calls == ["a", "b", "c"] * 3  # interleaved, not a, a, a, b, b, b
    assert a["seconds_per_step"] == 1.0 and a["round"] == 4  # the whole result of the fastest round
    assert b["seconds_per_step"] == 4.0
    assert c["examples_per_second"] == 30.0  # rates: the highest


def test_bench_smoke_on_a_tiny_model(tiny_bert_dir, tmp_path):
    """Every phase of `srnet bench` runs and reports its ratios (timings themselves are not asserted)."""
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    from srnet_cli.recipes.bench import BF16_RATIOS, TARGETS, run_bench

    config = AutoConfig.from_pretrained(tiny_bert_dir)
    config.max_position_embeddings = 128  # the original settings pad to 128
    BertForSequenceClassification(config).save_pretrained(tmp_path / "m")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "m")
    args = {"steps": 2, "batch": 4, "eval_examples": 16, "sizes": False, "memory": False, "peak_sizes": (64,)}
    result = run_bench(str(tmp_path / "m"), **args, bf16=True, log=lambda message: None)
    assert set(result["ratios"]) == set(TARGETS) - {"mask_train_memory_vs_dense"}
    assert all(value > 0 for value in result["ratios"].values())
    assert 0 <= result["finetune"]["padding_waste"] < 1 and result["pair_tokens"]["mean"] > 5
    flops = result["flops"]  # the machine's limit: the best of torch.mm in each precision and oneDNN's fp32 linear
    assert flops["matmul_peak"] == max(
        flops["matmul_peak_fp32"], flops["matmul_peak_bf16"], flops["matmul_peak_fp32_onednn"] or 0.0
    )
    # a CPU without native bf16: no bf16 timing at all (emulated bf16 would take most of an hour), fp32 ratios kept
    logged: list[str] = []
    fp32 = run_bench(str(tmp_path / "m"), **args, bf16=False, log=logged.append)
    assert set(fp32["ratios"]) == set(TARGETS) - {"mask_train_memory_vs_dense", *BF16_RATIOS}
    assert fp32["flops"]["matmul_peak_bf16"] is None and fp32["finetune"]["srnet_bf16_examples_per_s"] is None
    assert fp32["flops"]["matmul_peak"] == max(fp32["flops"]["matmul_peak_fp32"],
                                               fp32["flops"]["matmul_peak_fp32_onednn"] or 0.0)  # fmt: skip
    assert not any("bf16" in line and "skipped" not in line for line in logged)
    import importlib

    bench_cli = importlib.import_module("srnet_cli.cli.bench")  # the package's `bench` name is the command
    with bench_cli.stdout.capture() as printed:  # the CLI's tables render a skipped bf16 column as "-"
        bench_cli._table(fp32)
    assert "bf16 skipped (no native bf16 on this CPU)" in printed.get() and "finetune: srnet" in printed.get()
    assert "structured SRNets" in printed.get() and "compact 50%" in printed.get()
    compact = fp32["structured"]["cpu"]
    params = [compact[level]["params"] for level in ("0.70", "0.50", "0.30", "dense")]
    assert params == sorted(params) and len(set(params)) == 4
    assert compact["0.50"]["file_mb"] < compact["dense"]["file_mb"]
    assert fp32["machine"]["torch"] and fp32["machine"]["compiled"] is False
    assert fp32["machine"]["evaluation_fp32_products"] in ("oneDNN", "MKL")


def test_bench_names_instruction_set_caps(monkeypatch):
    """A CPU capped to AVX2 by the libraries' variables runs as an AVX2-only one: the bench says so."""
    import importlib

    from srnet_cli.recipes.bench import machine as machine_info

    bench_cli = importlib.import_module("srnet_cli.cli.bench")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    info = machine_info()
    assert info["isa_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert "capped: ONEDNN_MAX_CPU_ISA=AVX2" in bench_cli._machine(info)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert "capped" not in bench_cli._machine(machine_info())


def test_evaluate_bf16_matches_fp32_probabilities(tiny_bert_dir, synth_dir, tmp_path):
    """`evaluate --mixed-precision bf16` autocasts the forward passes: the train-set probabilities are those of
    fp32 within bf16 rounding, and the preset records the precision."""
    trained = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--warmup",
        "0",
        "--out",
        tmp_path / "ce",
        "--json",
    )
    assert trained.exit_code == 0, trained.output
    probs = {}
    for precision in ("no", "bf16"):
        result = invoke(
            "evaluate",
            "--model",
            tmp_path / "ce" / "model",
            "--task",
            "mnli",
            "--data-dir",
            synth_dir,
            "--split",
            "train",
            "--save-probs",
            tmp_path / f"{precision}.json",
            "--mixed-precision",
            precision,
            "--out",
            tmp_path / f"eval-{precision}",
            "--json",
        )
        assert result.exit_code == 0, result.output
        probs[precision] = json.loads((tmp_path / f"{precision}.json").read_text())["probs"]
    assert 'mixed_precision = "bf16"' in (tmp_path / "eval-bf16" / "preset.toml").read_text()
    full, half = (np.array([p[k] for k in sorted(p)]) for p in (probs["no"], probs["bf16"]))
    assert full.shape == half.shape and 0 < np.abs(full - half).max() < 0.02


def test_demo_with_a_shallow_bias_model(tiny_bert_dir, tmp_path):
    """--bias-kind shallow: the bias model is learnt (2-fold, each on the floor-sized subset of the other half, here
    all of it) and PoE reads its file."""
    spec = tiny_demo(tiny_bert_dir, dense_only=True, bias_kind="shallow")
    summary = demo.run(spec, tmp_path / "demo", "cpu", RecordingReporter())
    assert [r["method"] for r in summary["rows"]][0] == "bias-only (shallow)"
    bias = json.loads((tmp_path / "demo" / "bias" / "results.json").read_text())
    assert (
        bias["kind"] == "shallow" and bias["models"][0]["trained_on"] == 30
    )  # min(30 in the other fold, max(200, 0.5% of 60))
    poe = json.loads((tmp_path / "demo" / "finetune-poe" / "results.json").read_text())
    assert poe["loss"] == "poe"
    assert (
        str(tmp_path / "demo" / "bias" / "bias.json")
        in (tmp_path / "demo" / "finetune-poe" / "preset.toml").read_text()
    )
