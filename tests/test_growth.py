"""Every registered growth rule: one new node, and a child that starts as its parent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolchain.arch.genotype import MODES, seed_genotype
from toolchain.arch.network import Network, warm_start
from toolchain.cli import GROWTH_NAMES, STRATEGY_NAMES
from toolchain.cli import MODES as CLI_MODES
from toolchain.data import Dataset
from toolchain.search.candidates import CandidateConfig
from toolchain.search.growth import GROWTH_RULES, GrowthContext
from toolchain.search.strategies import STRATEGIES
from toolchain.train import TrainConfig, predict, train


def test_cli_offers_every_rule_strategy_and_mode() -> None:
    assert set(GROWTH_NAMES) == set(GROWTH_RULES)
    assert set(STRATEGY_NAMES) == set(STRATEGIES)
    assert CLI_MODES == MODES


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(GROWTH_RULES))
def test_rule_grows_one_node_and_starts_as_the_parent(
    name: str, mode: str, digits: Dataset
) -> None:
    parent_g = seed_genotype(8, 2, mode)
    parent = Network(parent_g, 1, 10)
    train(parent, digits, TrainConfig(epochs=1), seed=0)
    ctx = GrowthContext(
        digits,
        np.random.default_rng(1),
        1,
        frozenset({parent_g.arch_id}),
        CandidateConfig(epochs=1),
    )
    child = GROWTH_RULES[name](parent_g, parent.state_dict(), ctx)
    assert child.record["rule"] == name
    grown = [
        c
        for c, (a, b) in enumerate(zip(parent_g.cells, child.genotype.cells, strict=True))
        if a != b
    ]
    # Macro: one cell. Cell: every cell of the grown template, each one node longer.
    assert grown == parent_g.template_cells(grown[0])
    assert all(
        len(child.genotype.cells[c].nodes) == len(parent_g.cells[c].nodes) + 1 for c in grown
    )
    (merge_point,) = child.record["merge_points"]
    assert merge_point in grown
    assert 1 <= len(child.genotype.cells[merge_point].nodes[-1].edges) <= ctx.candidates.k
    assert child.genotype.mode == mode
    model = Network(child.genotype, 1, 10)
    torch.manual_seed(0)
    warm_start(model, child.init_state)
    images = digits.val.images[:64]
    assert float((predict(model, images) - predict(parent, images)).abs().max()) < 1e-6
