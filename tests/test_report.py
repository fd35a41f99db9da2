"""`srnet report`: grouping, mean ± std over seeds by hand, incomplete runs, and the files it writes."""

import json
import statistics

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.recipes.report import method_of, run

runner = CliRunner()


def _run(path, results):
    path.mkdir(parents=True)
    (path / "env.json").write_text("{}")
    (path / "results.json").write_text(json.dumps(results))


def _metrics(m, h):
    return {"dev_matched": {"acc": m, "n": 10}, "hans": {"acc": h, "non_entailed_acc": h / 2, "n": 12}}


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, (m, h) in {1: (0.9, 0.5), 2: (0.8, 0.7)}.items():
        _run(
            root / "ce" / f"seed-{seed}",
            {"command": "finetune", "task": "mnli", "loss": "ce", "seed": seed, "metrics": _metrics(m, h)},
        )
        _run(
            root / "mt" / f"seed-{seed}",
            {
                "command": "mask-train",
                "task": "mnli",
                "loss": "poe",
                "seed": seed,
                "sparsity": {"sparsity": 0.5},
                "data": {"ood_train": {}},
                "metrics": _metrics(m - 0.1, h + 0.1),
            },
        )
    levels = [{"level": s, "sparsity": s, "metrics": _metrics(0.9 - s, 0.6)} for s in (0.1, 0.2)]
    _run(
        root / "imp",
        {"command": "imp", "task": "mnli", "loss": "poe", "seed": 1, "rewind": "pretrained", "levels": levels},
    )
    (root / "crashed").mkdir()
    (root / "crashed" / "env.json").write_text("{}")  # started, never finished
    return root


def test_groups_by_method_and_sparsity_with_mean_and_std_by_hand(runs, tmp_path):
    report = run([runs], tmp_path / "report")
    rows = {(r["method"], r["sparsity"]): r for r in report["rows"]}
    assert set(rows) == {
        ("full model ce", 0.0),
        ("mask-train poe", 0.5),
        ("lottery-ticket IMP poe", 0.1),
        ("lottery-ticket IMP poe", 0.2),
    }
    hans = rows[("full model ce", 0.0)]["metrics"]["hans.acc"]
    assert hans["mean"] == pytest.approx(0.6) and hans["std"] == pytest.approx(statistics.stdev([0.5, 0.7]))
    assert rows[("mask-train poe", 0.5)]["metrics"]["dev_matched.acc"]["mean"] == pytest.approx(0.75)
    assert rows[("lottery-ticket IMP poe", 0.2)]["metrics"]["dev_matched.acc"]["mean"] == pytest.approx(0.7)
    assert report["incomplete"] == [str(runs / "crashed")]
    out = tmp_path / "report"
    md = (out / "report.md").read_text()
    assert "| full model ce | 0% | 2 | 85.0 ± 7.1 | 60.0 ± 14.1 | 30.0 ± 7.1 |" in md
    assert "crashed" in md.split("Incomplete")[1]
    assert (out / "mnli.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mask-train poe,0.5,2,hans.acc,0.700000" in (out / "report.csv").read_text()
    assert json.loads((out / "report.json").read_text())["rows"] == report["rows"]


def test_method_names():
    assert method_of({"command": "imp", "loss": "ce", "rewind": "none"}) == "IMP ce"
    assert (
        method_of({"command": "mask-train", "loss": "poe", "pretrained": True, "data": {}})
        == "mask-train poe (pre-trained)"
    )
    assert (
        method_of({"command": "mask-train", "loss": "ce", "data": {"ood_train": {"hans_train": 5}}})
        == "mask-train ce + OOD data"
    )
    assert method_of({"command": "retrain", "loss": "poe"}) == "retrain poe"


def test_cli_report_and_errors(runs, tmp_path):
    result = runner.invoke(app, ["report", str(runs), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["rows"]) == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(app, ["report", str(empty)])
    assert none.exit_code == 2 and "no finished srnet runs" in none.stderr
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_damaged_results_are_listed_not_crashing(runs, tmp_path):
    _run(runs / "damaged", {"command": "finetune", "task": "mnli", "seed": 3})  # no loss, no metrics
    (runs / "notjson").mkdir()
    (runs / "notjson" / "results.json").write_text("{")
    report = run([runs], None)
    assert str(runs / "damaged") in report["incomplete"] and str(runs / "notjson") in report["incomplete"]
    assert len(report["rows"]) == 4


def test_review_regressions(runs, tmp_path):
    # Overlapping roots count each run once.
    report = run([runs, runs / "ce", runs / "ce" / "seed-1"], None)
    ce = next(r for r in report["rows"] if r["method"] == "full model ce")
    assert ce["runs"] == 2
    # --out inside the reported runs is refused before anything is written.
    inside = runner.invoke(app, ["report", str(runs), "--out", str(runs / "ce" / "seed-1"), "--overwrite"])
    assert inside.exit_code == 2 and "inside the runs it reports on" in inside.stderr
    assert (runs / "ce" / "seed-1" / "results.json").is_file()
    # Gradual searches are their own method and grouped on the target sparsity.
    for seed, measured in ((1, 0.89), (2, 0.9)):
        _run(
            runs / "gradual" / f"seed-{seed}",
            {
                "command": "mask-train",
                "task": "mnli",
                "loss": "poe",
                "seed": seed,
                "target_sparsity": 0.9,
                "initial_sparsity": 0.7,
                "sparsity": {"sparsity": measured},
                "data": {"ood_train": {}},
                "metrics": _metrics(0.8, 0.6),
            },
        )
    rows = [r for r in run([runs], None)["rows"] if "gradual" in r["method"]]
    assert [(r["method"], r["sparsity"], r["runs"]) for r in rows] == [("mask-train poe (gradual from 70%)", 0.9, 2)]


def test_plot_reads_in_words_with_chance_error_bars_explained_and_hans_non_entailed(runs):
    import matplotlib.pyplot as plt

    from srnet_cli.recipes.report import collect, figure, summarise

    fig = figure(summarise(collect([runs]).points), "mnli")
    try:
        axes = fig.axes
        assert [ax.get_ylabel() for ax in axes] == [
            "MNLI-m accuracy (%)",
            "HANS accuracy (%)",
            "HANS non-entailed accuracy (%)",
        ]
        assert all(ax.get_xlabel() == "sparsity: masked weights set to zero (%)" for ax in axes)
        assert "side by side" not in " ".join(ax.get_xlabel() for ax in axes)
        caption = fig._suptitle.get_text()
        assert "error bars: ± 1 standard deviation over those seeds" in caption and "mean over 1-2 seeds" in caption
        for ax, chance in zip(axes, (100 / 3, 50.0, 200 / 3), strict=True):
            lines = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines() if len(line.get_ydata()) == 2}
            assert lines["chance (uniform random guess)"] == pytest.approx(chance)
            low, high = ax.get_ylim()
            assert all(low < y < high for y in lines.values())  # no reference line on the border
        assert set(axes[0].get_legend_handles_labels()[1]) >= {"full model CE", "mask-train PoE"}
    finally:
        plt.close(fig)
