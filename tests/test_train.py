from __future__ import annotations

import pytest
import torch

from toolchain.arch.genotype import seed_genotype
from toolchain.arch.network import Network
from toolchain.data import Dataset
from toolchain.errors import ModelFailed
from toolchain.train import TrainConfig, accuracy, train


def test_training_learns_digits(digits: Dataset) -> None:
    model = Network(seed_genotype(8, 2), 1, 10)
    before = accuracy(model, digits.val)
    losses = train(model, digits, TrainConfig(epochs=3), seed=0)
    assert losses[-1] < losses[0]
    assert accuracy(model, digits.val) > max(before + 0.2, 0.3)  # chance is 0.1


def test_same_seed_same_weights(digits: Dataset) -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        model = Network(seed_genotype(4, 2), 1, 10)
        train(model, digits, TrainConfig(epochs=1), seed=5)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_diverging_loss_fails_the_model(digits: Dataset) -> None:
    model = Network(seed_genotype(4, 2), 1, 10)
    with pytest.raises(ModelFailed, match="loss became"):
        train(model, digits, TrainConfig(epochs=2, lr=1e12, grad_clip=1e30), seed=0)
