"""Sparsity schedules as arithmetic, checked before anything runs (and in --dry-run): IMP levels that land exactly
on the requested sparsity, and mask-training threshold resets that can reach the final sparsity. No torch here."""

from __future__ import annotations

from srnet_cli.errors import UsageError

MAX_IMP_LEVELS = 100


def imp_level_count(rate: float, sparsity: float) -> int:
    """How many levels (rate, 2·rate, ...) reach `sparsity` exactly; a schedule that would stop short of it, end
    past it, or take more than MAX_IMP_LEVELS levels is refused with the nearest valid settings."""
    exact = sparsity / rate
    if exact > MAX_IMP_LEVELS + 0.5:
        raise ValueError(
            f"imp.rate {rate:g} makes {exact:.3g} levels up to --sparsity {sparsity:g} (at most {MAX_IMP_LEVELS}): "
            f"use imp.rate >= {sparsity / MAX_IMP_LEVELS:.3g}, e.g. 0.1"
        )
    count = round(exact)
    if count < 1:
        raise ValueError(f"--sparsity {sparsity:g} is below the first level ({rate:g}): pass --sparsity >= imp.rate")
    if abs(exact - count) > 1e-6 * count:
        below, above = int(exact), int(exact) + 1
        rates = " or ".join(f"{sparsity / n:.6g} ({n} level{'s' * (n > 1)})" for n in (above, below) if n >= 1)
        ends = " or ".join(f"{round(n * rate, 6):g}" for n in (below, above) if n >= 1 and n * rate < 1)
        raise ValueError(
            f"imp.rate {rate:g} does not divide --sparsity {sparsity:g}: its levels would stop at "
            f"{round(below * rate, 6):g} or end past it at {round(above * rate, 6):g}; use imp.rate={rates}, "
            f"or --sparsity {ends}"
        )
    return count


def cubic_sparsity(step: int, total: int, initial: float, final: float, end_fraction: float = 1.0) -> float:
    """Zhu & Gupta (2017): s(t) = s_f + (s_i − s_f)(1 − t/t_f)³ up to t_f = end_fraction·total, then s_f."""
    t_f = max(1.0, end_fraction * total)
    progress = min(1.0, step / t_f)
    value = final + (initial - final) * (1.0 - progress) ** 3
    return min(max(value, min(initial, final)), max(initial, final))


def check_resets(every: int | None, total: int, initial: float, final: float, end_fraction: float) -> None:
    """The thresholds set the mask's sparsity only when they are reset: a run whose resets cannot reach the final
    sparsity is refused before anything is written. Unset, they are reset at every evaluation and the last step."""
    if every is None:
        return
    last = (total // every) * every
    if last == 0:
        raise UsageError(
            f"search.recalibrate_every={every} resets the thresholds never in a run of {total} steps, so the "
            f"mask's sparsity would drift from {initial:g}",
            f"use search.recalibrate_every <= {total}, or leave it unset (every evaluation)",
        )
    reached = cubic_sparsity(last, total, initial, final, end_fraction)
    if abs(reached - final) > 1e-9:
        fits = max(d for d in range(1, total + 1) if total % d == 0 and d <= max(1, total // 10))
        raise UsageError(
            f"the gradual schedule {initial:g} -> {final:g} would end at sparsity {reached:.4f}: its last threshold "
            f"reset (every {every} steps) is at step {last}, before the schedule reaches {final:g} at step "
            f"{max(1.0, end_fraction * total):g}",
            f"use search.recalibrate_every={fits} (it divides the {total} steps), or leave it unset",
        )
