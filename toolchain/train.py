"""Training and evaluation: the one place for optimiser, schedule, augmentation and seeds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from toolchain.data import Dataset, Split
from toolchain.errors import ModelFailed


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    label_smoothing: float = 0.0
    grad_clip: float = 5.0


EpochCallback = Callable[[int, int, float], None]  # (epoch, epochs, mean loss)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init) and return a generator for data order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def augment(x: torch.Tensor, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop after padding by an eighth of the side, and (natural images) mirror flips."""
    n, _, h, w = x.shape
    pad = max(h // 8, 1)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    # One offset per batch: cheap on a CPU, and over many batches just as varied.
    out = padded[:, :, dy : dy + h, dx : dx + w]
    if hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


def train(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> list[float]:
    """SGD with momentum and a cosine schedule; returns the mean loss of each epoch.

    Raises :class:`ModelFailed` when the loss stops being finite: the search records the
    model as failed and goes on.
    """
    gen = seed_everything(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=True,
    )
    x_all, y_all = data.train.images, data.train.labels
    steps_per_epoch = math.ceil(len(y_all) / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, config.epochs * steps_per_epoch
    )
    losses = []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(y_all), generator=gen)
        total = 0.0
        for start in range(0, len(y_all), config.batch_size):
            idx = order[start : start + config.batch_size]
            x = augment(x_all[idx], data.hflip, gen)
            loss = F.cross_entropy(model(x), y_all[idx], label_smoothing=config.label_smoothing)
            if not torch.isfinite(loss):
                raise ModelFailed(f"loss became {loss.item()} in epoch {epoch + 1}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y_all))
        if on_epoch is not None:
            on_epoch(epoch + 1, config.epochs, losses[-1])
    return losses


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits in eval mode."""
    model.eval()
    return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, split: Split) -> float:
    return float((predict(model, split.images).argmax(1) == split.labels).float().mean())
