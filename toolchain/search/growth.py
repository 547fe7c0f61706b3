"""Growth rules: how a child is made from its parent, registered by name.

Every rule returns the child's genotype and its warm-start weights (the parent's, plus any
weights the rule trained for the new node). A new node joins its cell through a gate that
starts at zero, so every child starts out computing its parent's function.

* ``petridish``: the weak-learner candidate phase (``candidates.py``) picks the new node's
  (input, op) pairs from the gradient at a merge point (DESIGN §3).
* ``random``: the same merge points and the same number of (input, op) pairs per new node,
  drawn uniformly instead of ranked; the ablation the candidate phase must beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from toolchain.arch.genotype import Genotype, Node
from toolchain.data import Dataset
from toolchain.errors import ModelFailed
from toolchain.search.candidates import (
    CandidateConfig,
    candidate_pairs,
    choose_merge_points,
    grow_by_candidates,
)

MAX_REDRAWS = 50  # random growth redraws an architecture the study already has


@dataclass(frozen=True)
class GrowthContext:
    data: Dataset
    rng: np.random.Generator
    seed: int
    known_arch_ids: frozenset[str]
    candidates: CandidateConfig
    used_merge_points: frozenset[int] = frozenset()  # cells this parent already grew at


@dataclass(frozen=True)
class Child:
    genotype: Genotype
    init_state: dict[str, torch.Tensor]
    record: dict[str, Any]  # stored on the child's trial


GrowthRule = Callable[[Genotype, dict[str, torch.Tensor], GrowthContext], Child]
GROWTH_RULES: dict[str, GrowthRule] = {}


def register_growth(name: str) -> Callable[[GrowthRule], GrowthRule]:
    def add(rule: GrowthRule) -> GrowthRule:
        GROWTH_RULES[name] = rule
        return rule

    return add


@register_growth("random")
def random_growth(parent: Genotype, state: dict[str, torch.Tensor], ctx: GrowthContext) -> Child:
    """The candidate phase's ablation: same merge points and node size, pairs drawn at random."""
    for _ in range(MAX_REDRAWS):
        merge_points = choose_merge_points(
            parent, ctx.candidates.merge_points, ctx.rng, ctx.used_merge_points
        )
        child, kept = parent, []
        for m in merge_points:
            pairs = candidate_pairs(parent, m)
            picks = ctx.rng.choice(
                len(pairs), size=min(ctx.candidates.k, len(pairs)), replace=False
            )
            edges = tuple(pairs[i] for i in sorted(picks))
            child = child.with_node(m, Node(edges))
            kept += [{"cell": m, "input": e.input, "op": e.op} for e in edges]
        if child.arch_id not in ctx.known_arch_ids:
            return Child(
                child, state, {"rule": "random", "merge_points": merge_points, "kept": kept}
            )
    raise ModelFailed(f"random growth found no new architecture in {MAX_REDRAWS} draws")


@register_growth("petridish")
def petridish_growth(parent: Genotype, state: dict[str, torch.Tensor], ctx: GrowthContext) -> Child:
    child, init_state, record = grow_by_candidates(
        parent, state, ctx.data, ctx.candidates, ctx.seed, ctx.rng, ctx.used_merge_points
    )
    if child.arch_id in ctx.known_arch_ids:
        raise ModelFailed("the candidate phase chose an architecture the study already has")
    return Child(child, init_state, {"rule": "petridish", **record.to_dict()})
