from __future__ import annotations

import pytest
from optuna.trial import TrialState

from toolchain.arch.genotype import seed_genotype
from toolchain.errors import NothingFitsError
from toolchain.pareto import pareto_front, pick_under_budget
from toolchain.store import ModelRecord

GENOTYPE = seed_genotype(8, 2)


def record(trial: int, val: float, latency: float) -> ModelRecord:
    return ModelRecord(
        trial=trial,
        state=TrialState.COMPLETE,
        genotype=GENOTYPE,
        arch_id=GENOTYPE.arch_id,
        parent=None,
        params=1000 + trial,
        val_accuracy=val,
        test_accuracy=val - 0.01,
        latency_ms=latency,
        latency=None,
        artifacts={},
        fail_reason=None,
    )


MODELS = [
    record(0, 0.80, 0.5),
    record(1, 0.90, 1.0),
    record(2, 0.85, 1.5),
    record(3, 0.95, 3.0),
    record(4, 0.90, 0.9),
]


def test_pick_is_most_accurate_under_budget() -> None:
    assert pick_under_budget(MODELS, 2.0).trial == 4  # 0.90 at 0.9 ms beats 0.90 at 1.0 ms
    assert pick_under_budget(MODELS, 3.0).trial == 3
    assert pick_under_budget(MODELS, 0.5).trial == 0  # the budget is inclusive


def test_nothing_fits_names_the_closest_models() -> None:
    with pytest.raises(NothingFitsError) as info:
        pick_under_budget(MODELS, 0.1)
    message = str(info.value)
    assert info.value.exit_code == 3
    assert message.index("trial 0") < message.index("trial 4") < message.index("trial 1")


def test_front_drops_dominated_models() -> None:
    assert [r.trial for r in pareto_front(MODELS)] == [0, 4, 3]
