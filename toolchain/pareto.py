"""Fronts and the pick under a budget: pure functions over finished models."""

from __future__ import annotations

import numpy as np
from optuna._hypervolume import compute_hypervolume  # not re-exported; exact in 2-D

from toolchain.errors import NothingFitsError
from toolchain.store import ModelRecord

CLOSEST_SHOWN = 3


def fits(record: ModelRecord, budget_ms: float) -> bool:
    return record.latency_ms is not None and record.latency_ms <= budget_ms


def pick_under_budget(finished: list[ModelRecord], budget_ms: float) -> ModelRecord:
    """The most accurate model on validation whose latency meets the budget.

    Test accuracy is reported, never used to choose. Ties go to the faster model, then the
    earlier trial. Raises :class:`NothingFitsError` naming the closest models.
    """
    fitting = [r for r in finished if fits(r, budget_ms)]
    if fitting:
        return max(fitting, key=lambda r: (r.val_accuracy, -(r.latency_ms or 0.0), -r.trial))
    measured = sorted(
        (r for r in finished if r.latency_ms is not None), key=lambda r: r.latency_ms or 0.0
    )
    if not measured:
        raise NothingFitsError("the study has no finished model yet; run `petri search` first")
    closest = ", ".join(
        f"trial {r.trial} at {r.latency_ms:.3f} ms (val {r.val_accuracy:.2%})"
        for r in measured[:CLOSEST_SHOWN]
    )
    raise NothingFitsError(
        f"no model meets {budget_ms:g} ms; closest: {closest}",
        closest=[r.trial for r in measured[:CLOSEST_SHOWN]],
    )


def pareto_front(finished: list[ModelRecord]) -> list[ModelRecord]:
    """Models no other model beats on both validation error and latency, by latency.

    Not Optuna's ``best_trials``: that one keeps only models feasible under the budget the
    search ran with, while the front a user looks at must not depend on that budget.
    """
    measured = [r for r in finished if r.latency_ms is not None and r.val_accuracy is not None]
    front = [
        r
        for r in measured
        if not any(
            o.latency_ms <= r.latency_ms  # type: ignore[operator]
            and o.val_error <= r.val_error
            and (o.latency_ms < r.latency_ms or o.val_error < r.val_error)  # type: ignore[operator]
            for o in measured
        )
    ]
    return sorted(front, key=lambda r: r.latency_ms or 0.0)


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The area ``points`` dominate up to ``reference``, both coordinates minimised.

    Points not strictly below the reference in both coordinates add nothing (a model over the
    budget, when the reference latency is the budget). Optuna's exact computation.
    """
    inside = [p for p in points if p[0] < reference[0] and p[1] < reference[1]]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.array(inside, dtype=float), np.array(reference, float)))
