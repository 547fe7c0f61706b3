from __future__ import annotations

import numpy as np
import pytest

from toolchain.search.hull import eligible, lower_hull, sample_parent

# (cost, error): 0, 1, 3 are on the lower hull; 2 lies above the segment 1-3; 4 is dominated by 3.
POINTS = [(1.0, 0.50), (2.0, 0.30), (3.0, 0.29), (4.0, 0.20), (5.0, 0.25)]


def test_lower_hull_on_a_fixed_set() -> None:
    assert lower_hull(POINTS) == [0, 1, 3]


def test_points_right_of_the_best_are_not_on_the_hull() -> None:
    assert lower_hull([(1.0, 0.2), (2.0, 0.1), (3.0, 0.1), (4.0, 0.05)]) == [0, 1, 3]
    assert lower_hull([(1.0, 0.1), (2.0, 0.2)]) == [0]


def test_eps_band_admits_points_just_above_the_hull() -> None:
    # The hull at cost 3 is 0.25 (between 0.30 and 0.20); point 2 is 16% above it.
    assert eligible(POINTS, eps=0.025) == [0, 1, 3]
    assert eligible(POINTS, eps=0.20) == [0, 1, 2, 3]
    # Beyond the last vertex the hull is flat at 0.20: point 4 is 25% above.
    assert eligible(POINTS, eps=0.30) == [0, 1, 2, 3, 4]


def test_sampling_prefers_points_picked_fewer_times() -> None:
    rng = np.random.default_rng(0)
    picks = [sample_parent([10, 20, 30], [0, 1, 3], rng) for _ in range(20_000)]
    share = {k: picks.count(k) / len(picks) for k in (10, 20, 30)}
    # weights 1, 1/2, 1/4 -> probabilities 4/7, 2/7, 1/7
    assert share[10] == pytest.approx(4 / 7, abs=0.015)
    assert share[20] == pytest.approx(2 / 7, abs=0.015)
    assert share[30] == pytest.approx(1 / 7, abs=0.015)


def test_sampling_is_reproducible_with_a_seed() -> None:
    draw = lambda: [sample_parent([1, 2, 3], [0, 0, 0], np.random.default_rng(7)) for _ in range(5)]  # noqa: E731
    assert draw() == draw()
