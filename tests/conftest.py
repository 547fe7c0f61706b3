"""Shared fixtures: real data from ../shared/data and the embedded digits, a fast profile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from toolchain.data import Dataset, load_dataset

REPO = Path(__file__).resolve().parent.parent
# The project's data lives in ../shared/data beside the checkout; PETRI_DATA points elsewhere.
SHARED_DATA = Path(os.environ.get("PETRI_DATA", REPO.parent / "shared" / "data"))
MINI_CIFAR = SHARED_DATA / "cifar10-jpeg-mini.tar.gz"


@pytest.fixture(scope="session")
def mini_cifar() -> Path:
    if not MINI_CIFAR.is_file():
        pytest.fail(
            f"{MINI_CIFAR} is missing: put ../shared/data beside the checkout or set PETRI_DATA"
        )
    return MINI_CIFAR


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, val_fraction=0.15)


@pytest.fixture()
def fast_profile(tmp_path: Path) -> Path:
    """cpu-ort with a short timed region: real measurements, test-suite time."""
    profile = yaml.safe_load((REPO / "hwprofiles" / "cpu-ort.yaml").read_text())
    profile["name"] = "cpu-ort-fast"
    profile["timing"] = {
        "warmup_seconds": 0.0,
        "warmup_runs": 3,
        "min_seconds": 0.05,
        "min_runs": 30,
        "max_runs": 2000,
        "cv_limit": 0.15,
    }
    path = tmp_path / "cpu-ort-fast.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path
