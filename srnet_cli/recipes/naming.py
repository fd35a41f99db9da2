"""How a run's method is named, the one naming that report rows, retrained masks and the demo share."""

from __future__ import annotations

import re

from srnet_cli.recipes.results import RunResults


def search_name(
    command: str,
    loss: str | None,
    *,
    rewind: str = "none",
    ood_data: bool = False,
    pretrained: bool = False,
    initial: float | None = None,
    target: float | None = None,
    model: str = "",
) -> str:
    """How a subnetwork was searched (imp, mask-train): the one naming that report rows and retrained masks share."""
    loss_part = f" {loss}" if loss else ""
    if command == "imp":
        return f"{'lottery-ticket IMP' if rewind != 'none' else 'IMP'}{loss_part}"
    if ood_data:
        return f"mask-train{loss_part} + OOD data"
    name = f"mask-train{loss_part}{' (pre-trained)' if pretrained else ''}"
    if initial is not None and target is not None and initial != target:
        name += f" (gradual from {100 * initial:.0f}%)"
    step = re.search(r"checkpoints/step-(\d+)", model)
    return name + (f" (from step {step.group(1)})" if step else "")


def method_of(results: RunResults) -> str:
    """The paradigm and loss of a run, as a report row names it."""
    command, loss = results.command, results.loss
    if command == "finetune":
        return f"full model {loss}"
    if command == "retrain":  # retrained masks of different searches are different methods
        source = results.mask_method
        return f"retrain {loss}" + (f" ({source} mask)" if source else "")
    return search_name(
        command,
        loss,
        rewind=results.rewind or "none",
        ood_data=bool(results.data.get("ood_train")),
        pretrained=bool(results.pretrained),
        initial=results.initial_sparsity,
        target=results.target_sparsity,
        model=results.model,
    )
