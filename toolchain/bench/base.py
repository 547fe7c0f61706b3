"""The ``Backend`` contract, the timing loop every backend shares, and its statistics.

DESIGN §4: session creation and warm-up are outside the timed region; the timed region lasts
at least a minimum time and a minimum count; a distribution is recorded, not a number; when
the coefficient of variation is above the profile's limit we measure once more and, if it is
still above, flag the record as unstable.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.errors import InputError
from toolchain.hw import DeviceFacts, HardwareProfile, TimingSettings, environment_fingerprint

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class LatencyStats:
    """Summary of timed runs, in milliseconds."""

    n: int
    median: float
    mean: float
    std: float
    p90: float
    p99: float
    min: float
    max: float
    median_ci95: tuple[float, float]

    @property
    def cv(self) -> float:
        return self.std / self.mean if self.mean > 0 else math.inf

    @classmethod
    def from_samples(cls, samples_ms: list[float] | np.ndarray) -> LatencyStats:
        x = np.sort(np.asarray(samples_ms, dtype=np.float64))
        n = len(x)
        if n < 2:
            raise ValueError("need at least two timed runs for a distribution")
        # Distribution-free interval of the median: order statistics n/2 -+ z*sqrt(n)/2
        # (normal approximation of the binomial), clipped to the sample.
        half_width = Z_95 * math.sqrt(n) / 2
        lo = max(int(math.floor(n / 2 - half_width)), 0)
        hi = min(int(math.ceil(n / 2 + half_width)), n - 1)
        return cls(
            n=n,
            median=float(np.median(x)),
            mean=float(x.mean()),
            std=float(x.std(ddof=1)),
            p90=float(np.percentile(x, 90)),
            p99=float(np.percentile(x, 99)),
            min=float(x[0]),
            max=float(x[-1]),
            median_ci95=(float(x[lo]), float(x[hi])),
        )

    def statistic(self, name: str) -> float:
        value = getattr(self, name)
        if not isinstance(value, float):
            raise KeyError(f"{name!r} is not a latency statistic")
        return value


RunOnce = Callable[[], float | None]


def time_runs(run_once: RunOnce, settings: TimingSettings) -> LatencyStats:
    """Warm up, then time single calls of ``run_once`` until both minimums are met.

    ``run_once`` returns None to be timed by the host clock around the call, or the
    milliseconds it measured itself on the device (CUDA events around the enqueue).
    """
    clock = time.perf_counter
    start, warm = clock(), 0
    while warm < settings.warmup_runs or clock() - start < settings.warmup_seconds:
        run_once()
        warm += 1
    samples: list[float] = []
    start = clock()
    while len(samples) < settings.max_runs and (
        len(samples) < settings.min_runs or clock() - start < settings.min_seconds
    ):
        t0 = clock()
        device_ms = run_once()
        samples.append((clock() - t0) * 1e3 if device_ms is None else device_ms)
    return LatencyStats.from_samples(samples)


def time_with_recheck(
    run_once: RunOnce, settings: TimingSettings
) -> tuple[LatencyStats, bool, bool]:
    """The CV rule: returns (stats, remeasured, unstable)."""
    stats = time_runs(run_once, settings)
    if stats.cv <= settings.cv_limit:
        return stats, False, False
    stats = time_runs(run_once, settings)
    return stats, True, stats.cv > settings.cv_limit


@dataclass(frozen=True)
class LatencyRecord:
    """Everything a latency figure means (DESIGN §4): the distribution and its settings."""

    stats: LatencyStats
    budget_statistic: str
    backend: str
    device: str
    precision: str
    batch_size: int
    input_shapes: dict[str, tuple[int, ...]]
    threads: int
    profile: str
    remeasured: bool
    unstable: bool
    timing: dict[str, Any]
    device_facts: dict[str, Any]  # the device measured on: name, and for GPUs capability, driver
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific: transfers, engine
    environment: dict[str, Any] = field(default_factory=environment_fingerprint)

    @property
    def latency_ms(self) -> float:
        """The figure compared with the budget: the profile's budget statistic."""
        return self.stats.statistic(self.budget_statistic)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency_ms"] = self.latency_ms
        return out


Inputs = dict[str, np.ndarray]  # input name -> array, every dimension fixed


class Backend(ABC):
    """Measures the latency of an ONNX file as the target will run it.

    Contract for every implementation:

    * ``measure`` builds its session/engine once, outside the timed region, and reuses it;
    * it times one inference of ``inputs`` per run through :func:`time_with_recheck`, so
      every backend shares warm-up, statistics and the CV rule;
    * it raises :class:`~toolchain.errors.InputError` naming what is missing when the
      profile asks for a device, provider or library this machine does not have, and when
      the backend cannot run the model (an unsupported op), before anything is timed.
    """

    name: str

    @abstractmethod
    def measure(
        self, onnx_path: Path, inputs: Inputs, profile: HardwareProfile, device: DeviceFacts
    ) -> LatencyRecord:
        """Latency of ``onnx_path`` on ``inputs`` under ``profile``, on ``device`` (the one
        :func:`toolchain.hw.target_device` checked for the profile)."""

    @abstractmethod
    def infer(
        self, onnx_path: Path, batches: list[Inputs], profile: HardwareProfile, device: DeviceFacts
    ) -> list[np.ndarray]:
        """The first output for each batch, computed as the measured model computes it (the
        reduced-precision check compares this with fp32)."""

    def artifacts(
        self,
        onnx_path: Path,
        inputs: Inputs,
        profile: HardwareProfile,
        device: DeviceFacts,
        folder: Path,
    ) -> dict[str, Path]:
        """Files a deployment needs besides the ONNX model (a TensorRT engine), written into
        ``folder``, by artifact kind. None for backends that run the ONNX file itself."""
        return {}

    @abstractmethod
    def check_available(self, profile: HardwareProfile) -> None:
        """Raise :class:`InputError` saying how to install what ``profile`` needs and is missing."""

    def record(
        self,
        profile: HardwareProfile,
        inputs: Inputs,
        timed: tuple[LatencyStats, bool, bool],
        device: DeviceFacts,
        extra: dict[str, Any] | None = None,
    ) -> LatencyRecord:
        stats, remeasured, unstable = timed
        shapes = {name: tuple(int(d) for d in array.shape) for name, array in inputs.items()}
        return LatencyRecord(
            stats=stats,
            budget_statistic=profile.budget_statistic,
            backend=self.name,
            device=profile.device,
            precision=profile.precision,
            batch_size=profile.batch_size,
            input_shapes=shapes,
            threads=profile.threads,
            profile=profile.name,
            remeasured=remeasured,
            unstable=unstable,
            timing=profile.timing.model_dump(),
            device_facts=device.model_dump(),
            extra=extra or {},
        )


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    BACKENDS[cls.name] = cls
    return cls


def create_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise InputError(
            f"unknown latency backend {name!r}; available: {', '.join(sorted(BACKENDS))}"
        )
    return BACKENDS[name]()
