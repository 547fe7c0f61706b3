"""What measures: a profile, checked against this machine, with its backend ready.

Everything that can make a measurement impossible (no such device, another device than the
profile's, a backend library or provider not installed) is found here, once, before a search
touches its storage or ``petri profile`` reads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolchain.bench.base import Backend, Inputs, LatencyRecord, create_backend
from toolchain.bench.inputs import example_inputs, read_inputs, resolve_shapes
from toolchain.hw import DeviceFacts, HardwareProfile, target_device


@dataclass(frozen=True)
class Target:
    profile: HardwareProfile
    device: DeviceFacts
    backend: Backend

    @classmethod
    def here(cls, profile: HardwareProfile, allow_other_device: bool = False) -> Target:
        device = target_device(profile, allow_other_device)  # no GPU: say that first
        backend = create_backend(profile.backend)
        backend.check_available(profile)
        return cls(profile, device, backend)

    def measure(self, onnx_path: Path, inputs: Inputs) -> LatencyRecord:
        return self.backend.measure(onnx_path, inputs, self.profile, self.device)

    def artifacts(self, onnx_path: Path, inputs: Inputs, folder: Path) -> dict[str, Path]:
        return self.backend.artifacts(onnx_path, inputs, self.profile, self.device, folder)

    def measure_file(
        self, onnx_path: Path, shapes: dict[str, tuple[int, ...]] | None = None
    ) -> LatencyRecord:
        """Any ONNX file, like trtexec: random inputs at the profile's batch or ``shapes``."""
        specs = read_inputs(onnx_path)
        resolved = resolve_shapes(specs, self.profile.batch_size, shapes or {})
        return self.measure(onnx_path, example_inputs(specs, resolved))
