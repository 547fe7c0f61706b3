from __future__ import annotations

import torch

from toolchain.arch.genotype import Edge, Node, seed_genotype
from toolchain.arch.network import Network, count_flops, parameter_count, warm_start
from toolchain.data import Dataset
from toolchain.train import TrainConfig, predict, train


def test_grown_child_starts_as_its_parent(digits: Dataset) -> None:
    parent_g = seed_genotype(8, 2)
    parent = Network(parent_g, 1, 10)
    train(parent, digits, TrainConfig(epochs=1), seed=0)  # trained BN statistics, real weights
    child_g = parent_g.with_node(1, Node((Edge(0, "sep_conv_5x5"),)))
    child = Network(child_g, 1, 10)
    missing = warm_start(child, parent.state_dict())
    assert missing and all(name.startswith("cells.1.nodes.1.") for name in missing)
    images = digits.test.images[:64]
    assert torch.equal(predict(child, images), predict(parent, images))


def test_growth_adds_parameters_and_flops() -> None:
    g = seed_genotype(8, 2)
    child = g.with_node(0, Node((Edge(1, "sep_conv_3x3"),)))
    small, big = Network(g, 3, 10), Network(child, 3, 10)
    assert parameter_count(big) > parameter_count(small)
    assert count_flops(big, (3, 32, 32)) > count_flops(small, (3, 32, 32)) > 0


def test_output_has_one_logit_per_class_for_any_input_size() -> None:
    g = seed_genotype(8, 2)
    for channels, side in [(1, 8), (3, 32), (3, 27)]:
        out = Network(g, channels, 7)(torch.randn(2, channels, side, side))
        assert out.shape == (2, 7)
