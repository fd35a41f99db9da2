"""`srnet report`: grouping, mean ± std over seeds by hand, incomplete runs, and the files it writes."""

import json
import statistics

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.recipes.naming import method_of
from srnet_cli.recipes.report import run
from srnet_cli.recipes.results import RunResults

runner = CliRunner()


def _complete(results):
    """The fields every results.json has, around the ones a test is about."""
    if isinstance(results.get("sparsity"), dict):
        counts = {"encoder_sparsity": results["sparsity"]["sparsity"], "masked_weights": 10, "zeros": 5, "layers": 1}
        results = {**results, "sparsity": {**counts, **results["sparsity"]}}
    if "levels" in results:
        counts = {"step": 1, "masked_weights": 10, "zeros": 5, "layers": 1}
        levels = [{**counts, "encoder_sparsity": level["sparsity"], **level} for level in results["levels"]]
        results = {**results, "levels": levels}
    return {"model": "m", "out": "o", "steps": 1, "data": {}, **results}


def _run(path, results):
    path.mkdir(parents=True)
    (path / "env.json").write_text("{}")
    (path / "results.json").write_text(json.dumps(_complete(results)))


def _typed(results):
    return RunResults.model_validate(_complete(results))


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
    assert method_of(_typed({"command": "imp", "loss": "ce", "rewind": "none", "seed": 1, "task": "mnli"})) == "IMP ce"
    assert (
        method_of(_typed({"command": "mask-train", "loss": "poe", "pretrained": True, "seed": 1, "task": "mnli"}))
        == "mask-train poe (pre-trained)"
    )
    assert (
        method_of(
            _typed(
                {
                    "command": "mask-train",
                    "loss": "ce",
                    "data": {"ood_train": {"hans_train": 5}},
                    "seed": 1,
                    "task": "mnli",
                }
            )
        )
        == "mask-train ce + OOD data"
    )
    assert method_of(_typed({"command": "retrain", "loss": "poe", "seed": 1, "task": "mnli"})) == "retrain poe"


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

    from srnet_cli.recipes.report.grouping import collect, summarise
    from srnet_cli.recipes.report.rendering import figure

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


def _preset_run(path, seed, hans, **changes):
    """A finished 50% PoE mask-train run with its resolved preset: `changes` are dotted keys of the preset."""
    import tomli_w

    preset = {"command": "mask-train", "task": "mnli", "model": {"name_or_path": f"runs/ce/seed-{seed}/model"},
              "loss": {"kind": "poe", "bias": "bias.json"}, "train": {"seed": seed, "lr": 3e-4, "max_steps": 100},
              "mask": {"sparsity": 0.5, "scope": "layer"}, "search": {"init": "hard"}}  # fmt: skip
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        preset[section][key] = value
    _run(path, {"command": "mask-train", "task": "mnli", "loss": "poe", "seed": seed, "target_sparsity": 0.5,
                "sparsity": {"sparsity": 0.5}, "metrics": _metrics(0.8, hans)})  # fmt: skip
    (path / "preset.toml").write_text(tomli_w.dumps(preset))


def test_rows_are_runs_with_identical_settings(tmp_path):
    """The issue's case: one 50% run with mask.scope=layer (seed 1) and --seeds 1,2 with scope=global are two rows
    (n 1 and n 2), named by what differs; seed paths that differ only by the seed are one setting."""
    from srnet_cli.recipes.report.grouping import collect, summarise

    root = tmp_path / "runs"
    _preset_run(root / "layer", 1, 0.30)
    _preset_run(root / "global" / "seed-1", 1, 0.60, mask__scope="global")
    _preset_run(root / "global" / "seed-2", 2, 0.70, mask__scope="global")
    rows = {r["differs"]: r for r in summarise(collect([root]).points)}
    assert set(rows) == {'mask.scope="layer"', 'mask.scope="global"'}
    layer, glob = rows['mask.scope="layer"'], rows['mask.scope="global"']
    assert (layer["runs"], layer["metrics"]["hans.acc"]["mean"], layer["metrics"]["hans.acc"]["std"]) == (1, 0.3, 0.0)
    assert glob["runs"] == 2 and glob["seeds"] == [1, 2]
    assert glob["metrics"]["hans.acc"]["mean"] == pytest.approx(0.65)
    assert glob["metrics"]["hans.acc"]["std"] == pytest.approx(statistics.stdev([0.6, 0.7]))
    assert glob["method"].endswith('[mask.scope="global"]')


@pytest.mark.parametrize("key,value", [("search__init", "soft"), ("train__lr", 1e-4), ("train__max_steps", 200),
                                       ("loss__kind", "reweight")])  # fmt: skip
def test_any_setting_that_differs_splits_the_row(tmp_path, key, value):
    from srnet_cli.recipes.report.grouping import collect, summarise

    _preset_run(tmp_path / "runs" / "a", 1, 0.5)
    _preset_run(tmp_path / "runs" / "b", 2, 0.7, **{key: value})
    rows = summarise(collect([tmp_path / "runs"]).points)
    assert [r["runs"] for r in rows] == [1, 1] and all(key.replace("__", ".") in r["differs"] for r in rows)


def test_a_seed_twice_is_never_averaged_with_itself(tmp_path):
    from srnet_cli.recipes.report.grouping import collect, summarise

    _preset_run(tmp_path / "runs" / "first", 1, 0.5)
    _preset_run(tmp_path / "runs" / "again", 1, 0.7)
    _preset_run(tmp_path / "runs" / "other", 2, 0.9)
    rows = summarise(collect([tmp_path / "runs"]).points)
    assert sorted(r["runs"] for r in rows) == [1, 2]
    assert all(len(r["seeds"]) == r["runs"] for r in rows)  # every row's seeds are distinct
