"""Search scales (DESIGN §3): the same algorithm, from seconds to hours.

Every field can be overridden on the command line; a preset only supplies the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from toolchain.errors import InputError


@dataclass(frozen=True)
class Preset:
    name: str
    channels: int  # first-stage channels of the seed model
    seed_epochs: int  # the seed is trained from scratch
    child_epochs: int  # a child is warm-started from its parent, then trained this long
    candidate_epochs: int  # the weak-learner phase before each child
    batch_size: int
    lr: float
    val_fraction: float


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # Seconds on digits: for tests and for trying the command line.
        Preset(
            "smoke",
            channels=8,
            seed_epochs=2,
            child_epochs=1,
            candidate_epochs=1,
            batch_size=64,
            lr=0.05,
            val_fraction=0.15,
        ),
        # Minutes on two cores: digits in a few minutes, a 5,000-image CIFAR-10 subset in ~15.
        Preset(
            "cpu",
            channels=16,
            seed_epochs=12,
            child_epochs=6,
            candidate_epochs=1,
            batch_size=64,
            lr=0.05,
            val_fraction=0.1,
        ),
        # The original epoch counts (80 to train a seed, 80 for the weak learners, 80 for each
        # child; batch 64; DARTS's learning rate): days on GPUs.
        Preset(
            "paper",
            channels=16,
            seed_epochs=80,
            child_epochs=80,
            candidate_epochs=80,
            batch_size=64,
            lr=0.025,
            val_fraction=0.1,
        ),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name]


def with_overrides(preset: Preset, **values: float | int | None) -> Preset:
    """``preset`` with every field given a value on the command line (None: keep it)."""
    names = {f.name for f in fields(Preset)} - {"name"}
    unknown = set(values) - names
    assert not unknown, f"not preset fields: {unknown}"
    changes: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    return replace(preset, **changes)
