from __future__ import annotations

import pytest
from optuna.trial import TrialState

from toolchain.arch.genotype import seed_genotype
from toolchain.errors import NothingFitsError
from toolchain.pareto import hypervolume, pareto_front, pick_under_budget
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


def test_hypervolume_by_hand() -> None:
    staircase = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]
    # Columns of width 1 above x = 1, 2, 3 reach down to y = 3, 2, 1 under the roof y = 4.
    assert hypervolume(staircase, (4.0, 4.0)) == pytest.approx(1 + 2 + 3)
    dominated, outside = (3.0, 3.0), (5.0, 0.5)
    assert hypervolume([*staircase, dominated, outside], (4.0, 4.0)) == pytest.approx(6.0)
    assert hypervolume([outside], (4.0, 4.0)) == 0.0
    assert hypervolume([(0.5, 0.25)], (1.0, 1.0)) == pytest.approx(0.5 * 0.75)
