from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from toolchain.arch.genotype import seed_genotype
from toolchain.arch.network import Network
from toolchain.bench import Target, create_backend
from toolchain.bench.base import LatencyStats, time_with_recheck
from toolchain.errors import InputError
from toolchain.export.onnx import INPUT_NAME, export_onnx
from toolchain.hw import TimingSettings, cpu_model, load_profile


def test_statistics_against_hand_computed_values() -> None:
    samples = list(range(100, 0, -1))  # 1..100 ms, unsorted on purpose
    s = LatencyStats.from_samples(samples)
    assert (s.n, s.median, s.mean, s.min, s.max) == (100, 50.5, 50.5, 1.0, 100.0)
    assert s.p90 == pytest.approx(90.1)  # linear interpolation between 90 and 91
    assert s.p99 == pytest.approx(99.01)
    assert s.std == pytest.approx(29.011491975882016)  # sample std of 1..100
    # 95% interval of the median: order statistics 50 -+ 1.96 * sqrt(100) / 2 = 40.2 .. 59.8,
    # widened to whole ranks 40 and 60 (0-based), i.e. the values 41 and 61.
    assert s.median_ci95 == (41.0, 61.0)


def test_a_single_sample_is_not_a_distribution() -> None:
    with pytest.raises(ValueError):
        LatencyStats.from_samples([1.0])


def test_high_variation_is_measured_again_and_flagged() -> None:
    # Alternate a trivial and a heavy call: the coefficient of variation is far above 0.15.
    heavy = np.random.default_rng(0).standard_normal((300, 300))
    calls = iter(range(10**9))

    def run_once() -> None:
        if next(calls) % 2:
            np.linalg.svd(heavy)

    settings = TimingSettings(
        warmup_seconds=0, warmup_runs=1, min_seconds=0.01, min_runs=20, cv_limit=0.15
    )
    stats, remeasured, unstable = time_with_recheck(run_once, settings)
    assert remeasured and unstable
    assert stats.cv > 0.15 and stats.n >= 20


def test_onnxruntime_measures_a_real_model(tmp_path: Path, fast_profile: Path) -> None:
    path = tmp_path / "m.onnx"
    export_onnx(Network(seed_genotype(8, 2), 3, 10), (3, 32, 32), path, batch_size=1)
    target = Target.here(load_profile(str(fast_profile)))
    example = torch.randn(target.profile.batch_size, 3, 32, 32).numpy()
    record = target.measure(path, {INPUT_NAME: example})
    s = record.stats
    assert s.n >= target.profile.timing.min_runs
    assert 0 < s.min <= s.median <= s.p90 <= s.p99 <= s.max
    assert s.median_ci95[0] <= s.median <= s.median_ci95[1]
    assert record.latency_ms == s.median  # the profile's budget statistic
    assert record.input_shapes == {INPUT_NAME: (1, 3, 32, 32)}
    assert record.threads == target.profile.threads and record.device_facts["name"] == cpu_model()
    assert record.environment["onnxruntime"]


def test_unknown_backend_lists_available() -> None:
    with pytest.raises(InputError, match="available: onnxruntime"):
        create_backend("tflite")
