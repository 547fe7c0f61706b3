"""The lower convex hull of (cost, error) and Petridish's parent sampling on it (DESIGN §3).

Pure functions over plain numbers, so they are tested on fixed point sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def lower_hull(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the lower-left convex hull of (cost, error), by increasing cost.

    Andrew's monotone chain for the lower hull, cut where the error stops falling: a point to
    the right of the most accurate one costs more and is no better, so it is not on the
    frontier we grow from.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    hull: list[int] = []
    for i in order:
        while len(hull) >= 2 and _cross(points[hull[-2]], points[hull[-1]], points[i]) <= 0:
            hull.pop()
        hull.append(i)
    best = min(range(len(hull)), key=lambda k: (points[hull[k]][1], points[hull[k]][0]))
    return hull[: best + 1]


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def hull_error_at(points: Sequence[tuple[float, float]], hull: list[int], cost: float) -> float:
    """The hull's error at ``cost``: linear between vertices, flat beyond the last one."""
    xs = [points[i][0] for i in hull]
    ys = [points[i][1] for i in hull]
    return float(np.interp(cost, xs, ys))


def eligible(points: Sequence[tuple[float, float]], eps: float) -> list[int]:
    """Points whose error is within a relative ``eps`` above the hull at their cost."""
    if not points:
        return []
    hull = lower_hull(points)
    return [
        i
        for i, (cost, error) in enumerate(points)
        if error <= hull_error_at(points, hull, cost) * (1.0 + eps) + 1e-12
    ]


def sample_parent(
    candidates: Sequence[int], times_picked: Sequence[int], rng: np.random.Generator
) -> int:
    """Pick one of ``candidates``, each with probability proportional to 1/(times picked + 1)."""
    weights = np.asarray([1.0 / (n + 1) for n in times_picked], dtype=np.float64)
    return int(candidates[rng.choice(len(candidates), p=weights / weights.sum())])
