"""ONNX Runtime backend: the profile's providers only, sequential execution, its threads and
graph optimisation level.

On a GPU the input and output live on the device (IO binding), so a timed run is the
inference alone, as in a deployed pipeline that keeps tensors on the GPU; the copies to and
from the device are timed apart and kept in the record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.bench.base import (
    Backend,
    Inputs,
    LatencyRecord,
    register_backend,
    time_runs,
    time_with_recheck,
)
from toolchain.errors import InputError
from toolchain.hw import DeviceFacts, HardwareProfile

GRAPH_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
GPU_WHEEL_HINT = "install onnxruntime-gpu (not onnxruntime) with a matching CUDA"


def session_options(profile: HardwareProfile):  # -> ort.SessionOptions
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, GRAPH_LEVELS[profile.graph_optimization]
    )
    options.log_severity_level = 3  # errors only: shape warnings would print once per run
    options.intra_op_num_threads = profile.threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if profile.allow_spinning else "0"
    )
    return options


def provider_options(profile: HardwareProfile) -> list[tuple[str, dict[str, Any]]]:
    """Each provider of the profile with its options: device, and TensorRT's precision."""
    options: list[tuple[str, dict[str, Any]]] = []
    for provider in profile.execution_providers:
        settings: dict[str, Any] = {}
        if provider != "CPUExecutionProvider":
            settings["device_id"] = profile.device_id
        if provider == "TensorrtExecutionProvider":
            settings["trt_fp16_enable"] = profile.precision == "fp16"
            settings["trt_builder_optimization_level"] = profile.builder_optimization_level
        options.append((provider, settings))
    return options


def check_providers(profile: HardwareProfile) -> None:
    """Every provider the profile names is in this ONNX Runtime build (not proof of a GPU)."""
    import onnxruntime as ort

    missing = [p for p in profile.execution_providers if p not in ort.get_available_providers()]
    if missing:
        raise InputError(
            f"this ONNX Runtime build has no {', '.join(missing)}; {GPU_WHEEL_HINT}, "
            "or use a cpu profile such as cpu-ort"
        )


def create_session(onnx_path: Path, profile: HardwareProfile):  # -> ort.InferenceSession
    """A session on exactly the providers asked for; ONNX Runtime's silent CPU fallback and
    models it cannot run are bad input, said before anything is timed."""
    import onnxruntime as ort

    wanted = profile.execution_providers
    try:
        session = ort.InferenceSession(
            str(onnx_path),
            sess_options=session_options(profile),
            providers=provider_options(profile),
        )
    except Exception as exc:  # ORT raises its own pybind classes (Fail, InvalidGraph, ...)
        raise InputError(f"ONNX Runtime cannot run {onnx_path.name}: {ort_reason(exc)}") from exc
    if session.get_providers()[0] != wanted[0]:
        raise InputError(
            f"ONNX Runtime could not start {wanted[0]} and fell back to "
            f"{session.get_providers()[0]}; {GPU_WHEEL_HINT} and check the GPU driver"
        )
    return session


def probe(run_once: Callable[[], None], onnx_path: Path) -> None:
    """One run before timing: a model that loads but cannot run on these inputs is bad input."""
    try:
        run_once()
    except Exception as exc:  # ORT's pybind error classes
        raise InputError(f"ONNX Runtime cannot run {onnx_path.name}: {ort_reason(exc)}") from exc


def ort_reason(exc: Exception) -> str:
    """ONNX Runtime's message without its error-code prefix and C++ source locations."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return re.sub(r"\S+\.(?:cc|h|cpp):\d+ .*?\) ", "", text)


@register_backend
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def check_available(self, profile: HardwareProfile) -> None:
        check_providers(profile)

    def measure(
        self, onnx_path: Path, inputs: Inputs, profile: HardwareProfile, device: DeviceFacts
    ) -> LatencyRecord:
        session = create_session(onnx_path, profile)
        if profile.device == "cpu":
            output_names = [o.name for o in session.get_outputs()]
            feed = {name: np.ascontiguousarray(array) for name, array in inputs.items()}

            def run_once() -> None:
                session.run(output_names, feed)

            probe(run_once, onnx_path)
            timed = time_with_recheck(run_once, profile.timing)
            return self.record(profile, inputs, timed, device)
        return self._measure_bound(session, onnx_path, inputs, profile, device)

    def infer(
        self, onnx_path: Path, batches: list[Inputs], profile: HardwareProfile, device: DeviceFacts
    ) -> list[np.ndarray]:
        session = create_session(onnx_path, profile)
        return [np.asarray(session.run(None, batch)[0]) for batch in batches]

    def _measure_bound(
        self,
        session: Any,
        onnx_path: Path,
        inputs: Inputs,
        profile: HardwareProfile,
        device: DeviceFacts,
    ) -> LatencyRecord:
        """Inputs and outputs bound on the GPU; the transfers timed on their own."""
        import onnxruntime as ort

        def to_device(array: np.ndarray) -> Any:
            return ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(array), "cuda", profile.device_id
            )

        binding = session.io_binding()
        for name, array in inputs.items():
            binding.bind_ortvalue_input(name, to_device(array))
        for output in session.get_outputs():
            binding.bind_output(output.name, "cuda", profile.device_id)

        def run_once() -> None:
            session.run_with_iobinding(binding)  # returns once the outputs are ready

        probe(run_once, onnx_path)

        def upload() -> None:
            for array in inputs.values():
                to_device(array)

        def download() -> None:
            binding.copy_outputs_to_cpu()

        timed = time_with_recheck(run_once, profile.timing)
        transfers = {
            "host_to_device": asdict(time_runs(upload, profile.timing)),
            "device_to_host": asdict(time_runs(download, profile.timing)),
        }
        return self.record(profile, inputs, timed, device, {"transfers_ms": transfers})
