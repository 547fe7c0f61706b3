"""ONNX Runtime backend: sequential execution, the profile's threads and optimisation level."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.bench.base import Backend, LatencyRecord, register_backend, time_with_recheck
from toolchain.hw import HardwareProfile

GRAPH_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
# The profile chooses the providers; get_available_providers() lists CUDA even without a GPU.
PROVIDERS = {"cpu": ["CPUExecutionProvider"]}


def session_options(profile: HardwareProfile):  # -> ort.SessionOptions
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, GRAPH_LEVELS[profile.graph_optimization]
    )
    options.intra_op_num_threads = profile.threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if profile.allow_spinning else "0"
    )
    return options


@register_backend
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def measure(
        self, onnx_path: Path, example: np.ndarray, profile: HardwareProfile
    ) -> LatencyRecord:
        import onnxruntime as ort

        session = ort.InferenceSession(
            str(onnx_path),
            sess_options=session_options(profile),
            providers=PROVIDERS[profile.device],
        )
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(example, dtype=np.float32)}
        output_names = [o.name for o in session.get_outputs()]

        def run_once() -> None:
            session.run(output_names, feed)

        return self.record(profile, example, time_with_recheck(run_once, profile.timing))
