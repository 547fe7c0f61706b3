"""The machine's devices: what they are, whether a profile's target is here, the fingerprint.

GPU facts come from ``nvidia-smi`` (installed with every NVIDIA driver), so nothing here needs
CUDA libraries; a machine without the driver simply has no GPU.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from toolchain.errors import InputError
from toolchain.hw.profile import DeviceFacts, HardwareProfile

NVIDIA_SMI_QUERY = "name,compute_cap,memory.total,driver_version"


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_fingerprint() -> dict[str, str | int]:
    """What a latency figure depends on besides the model (DESIGN §4)."""
    import onnxruntime
    import torch

    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "tensorrt": _installed_version("tensorrt"),
    }


def _installed_version(distribution: str) -> str:
    """A package's version without importing it (TensorRT takes seconds to import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def detect_cpu() -> DeviceFacts:
    return DeviceFacts(kind="cpu", name=cpu_model(), cores=os.cpu_count())


def detect_gpus() -> list[DeviceFacts]:
    """Every NVIDIA GPU the driver reports, in its order; [] without a driver or a GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = [smi, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=30, check=True)
    except (subprocess.SubprocessError, OSError):
        return []
    return [parse_gpu_line(line) for line in out.stdout.splitlines() if line.strip()]


def parse_gpu_line(line: str) -> DeviceFacts:
    """One line of ``nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version``."""
    name, capability, memory_mib, driver = (field.strip() for field in line.split(","))
    return DeviceFacts(
        kind="cuda",
        name=name,
        compute_capability=capability,
        memory_gib=round(float(memory_mib) / 1024, 1),
        driver=driver,
    )


def target_device(profile: HardwareProfile, allow_other_device: bool = False) -> DeviceFacts:
    """The device ``profile`` measures on, checked to be here and to be the one it expects."""
    if profile.device == "cpu":
        device = detect_cpu()
    else:
        gpus = detect_gpus()
        if not gpus:
            raise InputError(
                f"profile {profile.name!r} measures on a CUDA GPU and this machine has none "
                "(nvidia-smi found no GPU); use a cpu profile such as cpu-ort"
            )
        if profile.device_id >= len(gpus):
            names = ", ".join(f"{i}: {g.name}" for i, g in enumerate(gpus))
            raise InputError(
                f"profile {profile.name!r} asks for GPU {profile.device_id}; available: {names}"
            )
        device = gpus[profile.device_id]
    expected = profile.expect_device
    if expected and expected.lower() not in device.name.lower() and not allow_other_device:
        raise InputError(
            f"profile {profile.name!r} is for a {expected!r} and this machine's device is "
            f"{device.name!r}; measure on that device, or pass --allow-other-device"
        )
    return device


def profile_for_this_machine(gpu_index: int | None = None) -> HardwareProfile:
    """A profile for this machine's GPU ``gpu_index`` (default: the first, if any) or its CPU.

    The GPU profile uses native TensorRT fp16 where TensorRT is installed, ONNX Runtime's CUDA
    provider otherwise; either expects this GPU's name, so it refuses to measure elsewhere.
    """
    gpus = detect_gpus()
    if gpu_index is not None and gpu_index >= len(gpus):
        found = ", ".join(f"{i}: {g.name}" for i, g in enumerate(gpus)) or "none"
        raise InputError(f"--gpu {gpu_index}: no such GPU; found: {found}")
    if not gpus:
        cpu = detect_cpu()
        return HardwareProfile(
            name="this-cpu-ort",
            description=f"{cpu.name}, {cpu.cores} cores: ONNX Runtime CPU, fp32, batch 1",
            expect_device=cpu.name,
            detected=cpu,
        )
    index = gpu_index or 0
    gpu = gpus[index]
    native = tensorrt_installed()
    return HardwareProfile(
        name="this-gpu-trt-fp16" if native else "this-gpu-cuda-ort",
        description=f"{gpu.name} (sm {gpu.compute_capability}, {gpu.memory_gib} GiB): "
        + ("TensorRT fp16" if native else "ONNX Runtime CUDA fp32")
        + ", batch 1",
        backend="tensorrt" if native else "onnxruntime",
        device="cuda",
        device_id=index,
        expect_device=gpu.name,
        precision="fp16" if native else "fp32",
        detected=gpu,
    )


def tensorrt_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None
