"""Growth rules: how a child is made from its parent, registered by name.

Every rule returns the child's genotype and its warm-start weights (the parent's, plus any
weights the rule trained for the new node). A new node joins its cell through a gate that
starts at zero, so every child starts out computing its parent's function.

* ``petridish``: the weak-learner candidate phase (``candidates.py``) picks the new node's
  (input, op) pairs from the gradient at a merge point (DESIGN §3).
* ``random``: one new node with one (input, op) edge chosen uniformly; the baseline the
  candidate phase must beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from toolchain.arch.genotype import CELL_INPUTS, Edge, Genotype, Node
from toolchain.arch.ops import OPS
from toolchain.data import Dataset
from toolchain.errors import ModelFailed
from toolchain.search.candidates import CandidateConfig, grow_by_candidates

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
    for _ in range(MAX_REDRAWS):
        cell = int(ctx.rng.integers(len(parent.cells)))
        source = int(ctx.rng.integers(CELL_INPUTS + len(parent.cells[cell].nodes)))
        op = sorted(OPS)[int(ctx.rng.integers(len(OPS)))]
        child = parent.with_node(cell, Node((Edge(source, op),)))
        if child.arch_id not in ctx.known_arch_ids:
            return Child(child, state, {"rule": "random", "cell": cell, "input": source, "op": op})
    raise ModelFailed(f"random growth found no new architecture in {MAX_REDRAWS} draws")


@register_growth("petridish")
def petridish_growth(parent: Genotype, state: dict[str, torch.Tensor], ctx: GrowthContext) -> Child:
    child, init_state, record = grow_by_candidates(
        parent, state, ctx.data, ctx.candidates, ctx.seed, ctx.rng, ctx.used_merge_points
    )
    if child.arch_id in ctx.known_arch_ids:
        raise ModelFailed("the candidate phase chose an architecture the study already has")
    return Child(child, init_state, {"rule": "petridish", **record.to_dict()})
