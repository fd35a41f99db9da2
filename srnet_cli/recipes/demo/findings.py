"""The demo's table rows and the paper's findings checked on them."""

from __future__ import annotations

from typing import Any

from srnet_cli.recipes.demo.spec import DemoSpec, DemoTask
from srnet_cli.recipes.demo.stages import GRADUAL, STRUCTURED, Stage
from srnet_cli.recipes.results import RunResults


def _row(demo: DemoTask, section: str, method: str, sparsity: float, run: str, metrics: dict[str, Any]) -> dict:
    values = {key: metrics.get(name, {}).get(metric) for key, (name, metric) in demo.columns.items()}
    return {"section": section, "method": method, "sparsity": sparsity, "run": run, **values}


def _rows_of(demo: DemoTask, stage: Stage, results: RunResults) -> list[dict[str, Any]]:
    if stage.command == "imp":  # one row per evaluated level
        return [
            _row(demo, stage.section, stage.label, level.level, stage.name, level.metrics) for level in results.levels
        ]
    measured = results.sparsity.sparsity if results.sparsity is not None and stage.command != "finetune" else 0.0
    return [_row(demo, stage.section, stage.label, round(measured, 4), stage.name, results.metrics)]


RETRAINED_AND_PRETRAINED = (
    "lottery-ticket IMP PoE, retrained PoE",
    "PoE mask (a), retrained PoE",
    "PoE mask (a), retrained CE",
    "mask training PoE on pre-trained",
)


def findings(rows: list[dict[str, Any]], demo: DemoTask, spec: DemoSpec) -> list[dict[str, Any]]:
    """The paper's qualitative claims, each checked on this run's numbers (holds: true / false)."""
    id_, ood = demo.id_key, demo.ood

    def get(method: str, sparsity: float | None = None) -> dict[str, Any] | None:
        return next(
            (r for r in rows if r["method"] == method and (sparsity is None or abs(r["sparsity"] - sparsity) < 0.02)),
            None,
        )

    ce, poe = get("CE fine-tuned"), get("PoE fine-tuned")
    if ce is None or poe is None:
        return []
    out = [
        _finding(
            "a debiasing loss (PoE) makes the full model more robust out of distribution",
            poe[ood] > ce[ood],
            f"{ood}: PoE {_pct(poe[ood])} vs CE {_pct(ce[ood])}",
        )
    ]
    for s in spec.sparsities:
        sub = get("mask training PoE", s)
        if sub is not None:
            out += _search_findings(sub, s, ce, get, id_, ood)
    for method in RETRAINED_AND_PRETRAINED:
        r = get(method)
        if r is not None:  # robust only counts with the task still learnt: a collapsed model can score on OOD sets
            out.append(
                _finding(
                    f"{method} ({100 * r['sparsity']:.0f}%) is an SRNet too: >= 95% of the CE model's "
                    f"{id_}, better on {ood}",
                    r[id_] >= 0.95 * ce[id_] and r[ood] > ce[ood],
                    f"{id_} {_pct(r[id_])} vs {_pct(ce[id_])}; {ood} {_pct(r[ood])} vs {_pct(ce[ood])}",
                )
            )
    first, last = spec.sparsities[0], spec.sparsities[-1]
    upper, sub = get("mask training CE + OOD train data"), get("mask training PoE", first)
    if upper is not None and sub is not None:
        out.append(
            _finding(
                "OOD training data is an upper bound: its subnetwork beats the PoE one on OOD",
                upper[ood] > sub[ood],
                f"{ood}: {_pct(upper[ood])} vs {_pct(sub[ood])}",
            )
        )
    gradual, fixed = next((r for r in rows if r["section"] == GRADUAL), None), get("mask training PoE", last)
    if gradual is not None and fixed is not None and first != last:
        out.append(
            _finding(
                f"gradual sparsity ({100 * first:.0f}%->{100 * last:.0f}%) beats a fixed {100 * last:.0f}% search",
                gradual[ood] + gradual[id_] > fixed[ood] + fixed[id_],
                f"{id_}/{ood}: gradual {_pct(gradual[id_])}/{_pct(gradual[ood])} vs fixed "
                f"{_pct(fixed[id_])}/{_pct(fixed[ood])}",
            )
        )
    structured = next((r for r in rows if r["section"] == STRUCTURED), None)
    if structured is not None:  # its speed as a compact model is measured, and reported beside the findings
        out.append(
            _finding(
                f"a structured SRNet exists at {100 * spec.sparsities[0]:.0f}% (whole heads and neurons): >= 95% of "
                f"the CE model's {id_}, better on {ood}",
                structured[id_] >= 0.95 * ce[id_] and structured[ood] > ce[ood],
                f"{id_} {_pct(structured[id_])} vs {_pct(ce[id_])}; {ood} {_pct(structured[ood])} vs {_pct(ce[ood])}",
            )
        )
    return out


def _search_findings(
    sub: dict[str, Any], s: float, ce: dict[str, Any], get: Any, id_: str, ood: str
) -> list[dict[str, Any]]:
    """At one sparsity: the PoE mask-train subnetwork is an SRNet, beats IMP, and beats the CE search."""
    out = [
        _finding(
            f"SRNets exist at {100 * s:.0f}%: a PoE subnetwork of the CE model keeps >= 95% of its {id_} "
            f"and beats it on {ood}",
            sub[id_] >= 0.95 * ce[id_] and sub[ood] > ce[ood],
            f"{id_} {_pct(sub[id_])} vs {_pct(ce[id_])} (95%: {_pct(0.95 * ce[id_])}); {ood} "
            f"{_pct(sub[ood])} vs {_pct(ce[ood])}",
        )
    ]
    rivals = {
        "IMP PoE": f"mask training finds more robust {100 * s:.0f}% subnetworks than IMP (PoE)",
        "mask training CE": f"the debiasing loss matters in the search too ({100 * s:.0f}%, mask training)",
    }
    for other, claim in rivals.items():
        rival = get(other, s)
        if rival is not None:
            out.append(
                _finding(
                    claim,
                    sub[ood] > rival[ood],
                    f"{ood}: mask training PoE {_pct(sub[ood])} vs {other} {_pct(rival[ood])}",
                )
            )
    return out


def _finding(claim: str, holds: bool, evidence: str) -> dict[str, Any]:
    return {"claim": claim, "holds": bool(holds), "evidence": evidence}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"
