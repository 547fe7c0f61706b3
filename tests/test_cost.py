"""The latency estimate for pending models, and parent choice with it (DESIGN §3)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from optuna.trial import TrialState

from toolchain.arch.genotype import seed_genotype
from toolchain.search.cost import costs, fit_latency
from toolchain.search.parents import choose_parent
from toolchain.store import ModelRecord

GENOTYPE = seed_genotype(8, 2)


def model(trial: int, flops: int, params: int, latency: float | None, val: float) -> ModelRecord:
    return ModelRecord(
        trial=trial, state=TrialState.COMPLETE, genotype=GENOTYPE, arch_id=str(trial),
        parent=None, params=params, val_accuracy=val, test_accuracy=val, latency_ms=latency,
        latency=None, artifacts={}, fail_reason=None, flops=flops,
    )  # fmt: skip


def law(flops: int, params: int) -> float:
    return 0.02 + 3e-9 * flops + 2e-7 * params


SIZES = [(1_000_000, 5_000), (4_000_000, 9_000), (9_000_000, 30_000), (2_000_000, 40_000)]


def test_fit_recovers_a_linear_cost_law() -> None:
    measured = [model(i, f, p, law(f, p), 0.5) for i, (f, p) in enumerate(SIZES)]
    pending = model(9, 6_000_000, 20_000, None, 0.6)
    assert costs([*measured, pending]) == pytest.approx(
        [law(f, p) for f, p in SIZES] + [law(6_000_000, 20_000)], rel=1e-6
    )
    assert fit_latency(measured[:2]) is None  # two points fit no plane worth trusting
    assert costs([*measured[:2], pending])[-1] is None


def test_fit_never_makes_more_work_faster() -> None:
    # Noisy measurements where a free fit would give parameters a negative weight.
    rng = np.random.default_rng(0)
    measured = [
        model(i, f, p, law(f, 0) * (1 + 0.3 * rng.standard_normal()), 0.5)
        for i, (f, p) in enumerate(SIZES * 3)
    ]
    assert (fit_latency(measured).coef_ >= 0).all()  # type: ignore[union-attr]


def test_a_pending_model_can_be_the_parent_and_over_budget_estimates_cannot() -> None:
    measured = [model(i, f, p, law(f, p), 0.50) for i, (f, p) in enumerate(SIZES)]
    fast_pending = model(10, 500_000, 1_000, None, 0.95)  # far better, cheap: the hull's corner
    rng = np.random.default_rng(0)
    picks = {choose_parent([*measured, fast_pending], [], 1.0, 0.025, rng).trial for _ in range(20)}
    assert picks == {10}
    costly_pending = dataclasses.replace(fast_pending, flops=10**12)
    assert choose_parent([costly_pending], [], 1.0, 0.025, rng) is None
    with_it = [*measured, costly_pending]
    assert all(choose_parent(with_it, [], 1.0, 0.025, rng).trial != 10 for _ in range(20))
