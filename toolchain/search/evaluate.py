"""What happens to every fully trained model: train, evaluate, export, parity, measure.

Each phase is timed on its own clock so the trial records where the time went.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toolchain.arch.genotype import Genotype
from toolchain.arch.network import Network, count_flops, parameter_count, warm_start
from toolchain.bench import Target
from toolchain.bench.precision import check_precision
from toolchain.data import Dataset
from toolchain.errors import ModelFailed
from toolchain.export.onnx import INPUT_NAME, check_parity, export_onnx
from toolchain.store import records as attr
from toolchain.train import EpochCallback, TrainConfig, accuracy, seed_everything, train

PROBE_IMAGES = 256  # validation images a reduced-precision model is checked on


@dataclass
class PhaseClock:
    seconds: dict[str, float] = field(default_factory=dict)
    on_enter: Callable[[str], None] = lambda name: None  # a progress display follows the phases
    on_exit: Callable[[str, float], None] = lambda name, seconds: None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.on_enter(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + took
            self.on_exit(name, took)


@dataclass(frozen=True)
class TrainedModel:
    attrs: dict[str, Any]  # trial attributes, keys from toolchain.store.records
    val_error: float
    latency_ms: float | None  # None: measured later, by a profiling worker
    files: dict[str, Path]  # artifact kind -> file


@dataclass(frozen=True)
class Measurement:
    attrs: dict[str, Any]  # the latency record, its figure, the precision check
    latency_ms: float
    files: dict[str, Path]  # what the backend deploys beside the ONNX file (an engine)


def build_model(
    genotype: Genotype, data: Dataset, init_state: dict[str, torch.Tensor] | None, seed: int
) -> nn.Module:
    """A fresh network; a child is warm-started from ``init_state`` (parent + grown weights)."""
    seed_everything(seed)  # weights not in init_state depend on the seed alone
    model = Network(genotype, data.input_shape[0], len(data.classes))
    if init_state is not None:
        warm_start(model, init_state)
    return model


def parity_batch_size(export_batch: int) -> int:
    """A batch size other than the exported one, so a frozen batch axis is caught."""
    return 7 if export_batch != 7 else 5


def train_and_measure(
    model: nn.Module,
    data: Dataset,
    target: Target | None,
    export_batch: int,
    config: TrainConfig,
    seed: int,
    workdir: Path,
    clock: PhaseClock,
    on_epoch: EpochCallback | None = None,
) -> TrainedModel:
    """Train ``model`` fully, then export, verify and measure it. Raises ModelFailed.

    The ONNX file is exported at the profile's ``export_batch`` (its batch axis stays
    dynamic); ``target`` None: the model is measured elsewhere (``--measure remote``), later.
    """
    with clock.phase("train"):
        losses = train(model, data, config, seed, on_epoch)
        val_acc, test_acc = accuracy(model, data.val), accuracy(model, data.test)
    onnx_path, weights_path = workdir / "model.onnx", workdir / "weights.pt"
    with clock.phase("export"):
        export_onnx(model, data.input_shape, onnx_path, export_batch)
        torch.save(model.state_dict(), weights_path)
    with clock.phase("parity"):
        parity = check_parity(model, onnx_path, data.val.images[: parity_batch_size(export_batch)])
    measurement = None
    if target is not None:
        with clock.phase("measure"):
            measurement = measure_model(target, onnx_path, probe_images(data), workdir)
    attrs = {
        attr.PARAMS: parameter_count(model),
        attr.FLOPS: count_flops(model, data.input_shape),
        attr.VAL_ACCURACY: val_acc,
        attr.VAL_ERROR: 1.0 - val_acc,
        attr.TEST_ACCURACY: test_acc,
        attr.TEST_ERROR: 1.0 - test_acc,
        attr.EPOCHS: config.epochs,
        attr.TRAIN_LOSSES: [round(x, 6) for x in losses],
        attr.PARITY: parity.to_dict(),
    }
    files = {"onnx": onnx_path, "weights": weights_path}
    if measurement is None:
        return TrainedModel(attrs, 1.0 - val_acc, None, files)
    attrs |= measurement.attrs
    return TrainedModel(attrs, 1.0 - val_acc, measurement.latency_ms, files | measurement.files)


def probe_images(data: Dataset) -> np.ndarray:
    """The validation images every model is measured and precision-checked on."""
    return data.val.images[:PROBE_IMAGES].numpy()


def measure_model(target: Target, onnx_path: Path, probe: np.ndarray, workdir: Path) -> Measurement:
    """Time an exported model on ``target`` and check a reduced precision on ``probe``.

    Latency is measured on the first probe image repeated to the profile's batch: a real
    image, as deployed. The search and the profiling workers both measure through here.
    Raises ModelFailed when the reduced-precision model gives NaN or Inf.
    """
    inputs = {INPUT_NAME: np.repeat(probe[:1], target.profile.batch_size, axis=0)}
    latency = target.measure(onnx_path, inputs)
    deployables = target.artifacts(onnx_path, inputs, workdir)
    precision = check_precision(target, onnx_path, probe, INPUT_NAME)
    if precision is not None and not precision["all_finite"]:
        raise ModelFailed(
            f"the {precision['precision']} model gives NaN or Inf", {attr.PRECISION: precision}
        )
    attrs = {
        attr.LATENCY: latency.to_dict(),
        attr.LATENCY_MS: latency.latency_ms,
        attr.LATENCY_P90_MS: latency.stats.p90,
        attr.LATENCY_P99_MS: latency.stats.p99,
        attr.PRECISION: precision,
    }
    return Measurement(attrs, latency.latency_ms, deployables)
