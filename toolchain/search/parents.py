"""Which finished model to grow next (DESIGN §3): the eps band above the lower hull of
(cost, validation error), models over the budget left out, rarely picked models preferred.

The cost is the latency measured on the search's profile; a model whose measurement is still
pending takes the fitted estimate (``cost.py``) meanwhile.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from toolchain.search.cost import costs
from toolchain.search.hull import eligible, sample_parent
from toolchain.store import ModelRecord


def choose_parent(
    finished: list[ModelRecord],
    everything: list[ModelRecord],
    cost_limit_ms: float,
    eps: float,
    rng: np.random.Generator,
) -> ModelRecord | None:
    """A parent among ``finished``; ``everything`` (running and failed too) counts the picks.

    None when no model is at or under ``cost_limit_ms`` (the budget with its slack).
    """
    pool = [
        (record, cost)
        for record, cost in zip(finished, costs(finished), strict=True)
        if cost is not None and cost <= cost_limit_ms
    ]
    if not pool:
        return None
    candidates = eligible([(cost, record.val_error) for record, cost in pool], eps)
    picked = Counter(r.parent for r in everything if r.parent is not None)
    index = sample_parent(candidates, [picked[pool[i][0].trial] for i in candidates], rng)
    return pool[index][0]
