"""Hardware profiles: what the target is and how to time a model on it.

A profile is YAML data in ``hwprofiles/`` (or any path), validated with pydantic so that a
typo in a key or a value outside its range is reported with the file and the field instead
of silently changing what is measured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolchain.errors import InputError

PROFILE_DIRS_ENV = "PETRI_HWPROFILES"
BUNDLED_PROFILE_DIR = Path(__file__).resolve().parents[2] / "hwprofiles"


class TimingSettings(BaseModel):
    """DESIGN §4: warm-up and timed region, both bounded below by time and by count."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    warmup_seconds: float = Field(0.2, ge=0, le=600, description="minimum warm-up time")
    warmup_runs: int = Field(10, ge=1, description="minimum warm-up runs")
    min_seconds: float = Field(1.0, gt=0, le=3600, description="minimum timed duration")
    min_runs: int = Field(100, ge=10, description="minimum timed runs")
    max_runs: int = Field(100_000, ge=10, description="stop after this many timed runs")
    cv_limit: float = Field(
        0.15, gt=0, description="coefficient of variation above which we measure once more"
    )

    @model_validator(mode="after")
    def _max_covers_min(self) -> TimingSettings:
        if self.max_runs < self.min_runs:
            raise ValueError(f"max_runs ({self.max_runs}) is below min_runs ({self.min_runs})")
        return self


class DeviceFacts(BaseModel):
    """What `petri hw detect` saw on the machine it ran on; kept in the profile for the record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cpu", "cuda"]
    name: str  # CPU model or GPU name, as the driver reports it
    cores: int | None = Field(None, ge=1)
    compute_capability: str | None = None
    memory_gib: float | None = None
    driver: str | None = None


ORT_CPU = "CPUExecutionProvider"
ORT_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


class HardwareProfile(BaseModel):
    """One measuring target. Unknown keys are errors: a misspelt key must not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="file-name safe")
    description: str = ""
    backend: Literal["onnxruntime", "tensorrt"] = "onnxruntime"
    device: Literal["cpu", "cuda"] = "cpu"
    device_id: int = Field(0, ge=0, description="which GPU, in the driver's order")
    expect_device: str | None = Field(
        None,
        pattern=r"\S",
        description="part of the device's name (GPU name or CPU model) checked first",
    )
    precision: Literal["fp32", "fp16"] = "fp32"
    providers: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="ONNX Runtime execution providers in order (default: from device)",
    )
    batch_size: int = Field(1, ge=1)
    threads: int = Field(1, ge=1, le=1024, description="ONNX Runtime intra-op threads")
    allow_spinning: bool = True
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    cuda_graph: bool = Field(False, description="TensorRT: replay each inference as a CUDA graph")
    builder_optimization_level: int = Field(3, ge=0, le=5, description="TensorRT builder")
    budget_statistic: Literal["median", "mean", "p90", "p99"] = "median"
    timing: TimingSettings = TimingSettings()
    detected: DeviceFacts | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HardwareProfile:
        for problem in _problems(self):
            raise ValueError(problem)
        return self

    @property
    def execution_providers(self) -> tuple[str, ...]:
        """ONNX Runtime's providers: the profile's, or the device's default."""
        if self.providers is not None:
            return self.providers
        return (ORT_CPU,) if self.device == "cpu" else ("CUDAExecutionProvider",)


def _problems(p: HardwareProfile) -> list[str]:
    """Combinations no backend can measure, each said as what to change."""
    problems = []
    if p.backend == "tensorrt" and p.device != "cuda":
        problems.append("backend tensorrt needs device: cuda")
    if p.backend == "tensorrt" and p.providers is not None:
        problems.append("providers are ONNX Runtime's; remove them for backend tensorrt")
    if p.device == "cpu" and p.precision != "fp32":
        problems.append("device cpu measures fp32 only; use precision: fp32")
    if p.device == "cpu" and p.providers not in (None, (ORT_CPU,)):
        problems.append(f"device cpu takes providers [{ORT_CPU}] only")
    first_provider = p.providers[0] if p.providers else None
    if p.device == "cuda" and p.providers is not None and first_provider not in ORT_GPU_PROVIDERS:
        problems.append(f"device cuda needs a first provider among {', '.join(ORT_GPU_PROVIDERS)}")
    gpu_ort_fp16 = p.backend == "onnxruntime" and p.execution_providers[0] == ORT_GPU_PROVIDERS[1]
    if p.precision == "fp16" and p.backend == "onnxruntime" and not gpu_ort_fp16:
        problems.append("fp16 with onnxruntime needs TensorrtExecutionProvider first")
    if p.cuda_graph and p.backend != "tensorrt":
        problems.append("cuda_graph applies to backend tensorrt only")
    return problems


def profile_dirs() -> list[Path]:
    """Where profile names are looked up: $PETRI_HWPROFILES, ./hwprofiles, then the bundled ones."""
    dirs = [Path(p) for p in os.environ.get(PROFILE_DIRS_ENV, "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "hwprofiles", BUNDLED_PROFILE_DIR]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def list_profiles() -> dict[str, Path]:
    """Profile name -> file, earlier directories winning."""
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def resolve_profile_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if path.is_dir():
            raise InputError(f"hardware profile {name_or_path} is a folder; give a YAML file")
        if not path.is_file():
            raise InputError(f"hardware profile file {name_or_path} does not exist")
        return path
    available = list_profiles()
    if name_or_path not in available:
        names = ", ".join(sorted(available)) or "none"
        raise InputError(
            f"unknown hardware profile {name_or_path!r}; available: {names} (or give a YAML path)"
        )
    return available[name_or_path]


def load_profile(name_or_path: str) -> HardwareProfile:
    """Load and validate a profile by name (from :func:`profile_dirs`) or by path."""
    path = resolve_profile_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid YAML text file ({exc.__class__.__name__})") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a profile must be a mapping of keys to values")
    try:
        return HardwareProfile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = f"field {field!r}: " if field else ""
        message = first["msg"].removeprefix("Value error, ")
        raise InputError(f"{path}: {where}{message}") from exc
