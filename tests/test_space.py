"""The search space as Optuna parameters: what the from-scratch baselines draw from."""

from __future__ import annotations

import optuna
import pytest
import torch

from toolchain.arch.genotype import MODES, seed_genotype, validate
from toolchain.arch.network import Network
from toolchain.search.space import suggest_genotype

MAX_NEW_NODES, MAX_EDGES = 2, 3


@pytest.mark.parametrize("mode", MODES)
def test_every_draw_is_a_buildable_growth_of_the_seed(mode: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    names = set()
    for _ in range(20):
        trial = study.ask()
        genotype = suggest_genotype(trial, (4, 8), 2, mode, MAX_NEW_NODES, MAX_EDGES)
        validate(genotype)
        seed = seed_genotype(trial.params["width"], 2, mode)
        for c, (grown, base) in enumerate(zip(genotype.cells, seed.cells, strict=True)):
            assert grown.nodes[: len(base.nodes)] == base.nodes  # the seed's nodes kept
            anchor = seed.template_cells(c)[0]
            assert len(grown.nodes) - len(base.nodes) == trial.params[f"cell{anchor}.nodes"]
            assert all(1 <= len(node.edges) <= MAX_EDGES for node in grown.nodes)
        names.add(frozenset(trial.params))
        study.tell(trial, 0.0)
    assert len(names) == 1  # one fixed set of parameters, used or not, for NSGA-II
    out = Network(genotype, 3, 10)(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10)
