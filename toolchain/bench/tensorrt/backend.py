"""Native TensorRT backend: an engine per model, built once and kept, timed on the device."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from toolchain.bench.base import Backend, Inputs, LatencyRecord, register_backend, time_with_recheck
from toolchain.bench.inputs import read_inputs
from toolchain.bench.tensorrt.cache import EngineCache
from toolchain.bench.tensorrt.engine import EngineKey, build_engine
from toolchain.bench.tensorrt.loader import load_tensorrt
from toolchain.bench.tensorrt.runtime import EngineRunner
from toolchain.errors import InputError
from toolchain.hw import DeviceFacts, HardwareProfile

ENGINE_FILE = "model.engine"
ENGINE_KEY_FILE = "engine_key.json"  # where the engine runs: GPU, compute capability, TensorRT


@register_backend
class TensorRTBackend(Backend):
    name = "tensorrt"

    def check_available(self, profile: HardwareProfile) -> None:
        try:
            load_tensorrt()
        except InputError as exc:
            raise InputError(
                f"profile {profile.name!r} measures with native TensorRT: {exc}"
            ) from exc

    def engine(
        self, onnx_path: Path, inputs: Inputs, profile: HardwareProfile, device: DeviceFacts
    ) -> tuple[bytes, EngineKey, bool]:
        """The engine for these shapes on this GPU: from the cache when its key matches,
        built (and cached, with the profile's timing cache updated) otherwise."""
        trt = load_tensorrt()
        shapes = {name: tuple(int(d) for d in array.shape) for name, array in inputs.items()}
        key = EngineKey.for_model(trt, onnx_path, profile.precision, device, shapes)
        cache = EngineCache(profile.name)
        cached = cache.engine(key)
        if cached is not None:
            return cached, key, False
        dims = {spec.name: spec.dims for spec in read_inputs(onnx_path)}
        with tempfile.TemporaryDirectory(prefix="petri-trt-") as tmp:
            engine, timing = build_engine(
                trt, onnx_path, profile, dims, shapes, cache.timing_cache(), Path(tmp)
            )
        cache.store(key, engine, timing)
        return engine, key, True

    def artifacts(
        self,
        onnx_path: Path,
        inputs: Inputs,
        profile: HardwareProfile,
        device: DeviceFacts,
        folder: Path,
    ) -> dict[str, Path]:
        engine, key, _ = self.engine(onnx_path, inputs, profile, device)
        (folder / ENGINE_FILE).write_bytes(engine)
        (folder / ENGINE_KEY_FILE).write_text(json.dumps(key.to_dict(), indent=2))
        return {"engine": folder / ENGINE_FILE, "engine_key": folder / ENGINE_KEY_FILE}

    def measure(
        self, onnx_path: Path, inputs: Inputs, profile: HardwareProfile, device: DeviceFacts
    ) -> LatencyRecord:
        engine, key, built = self.engine(onnx_path, inputs, profile, device)
        runner = EngineRunner(
            load_tensorrt(), engine, inputs, profile.device_id, profile.cuda_graph
        )
        timed = time_with_recheck(runner.run_once, profile.timing)
        extra = {
            "engine_key": key.to_dict(),
            "engine_built": built,
            "cuda_graph": profile.cuda_graph,
        }
        return self.record(profile, inputs, timed, device, extra)

    def infer(
        self, onnx_path: Path, batches: list[Inputs], profile: HardwareProfile, device: DeviceFacts
    ) -> list[np.ndarray]:
        engine, _, _ = self.engine(onnx_path, batches[0], profile, device)
        runner = EngineRunner(load_tensorrt(), engine, batches[0], profile.device_id, False)
        outputs = []
        for batch in batches:
            runner.load(batch)
            runner.run_once()
            outputs.append(runner.outputs()[0])
        return outputs
