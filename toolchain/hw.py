"""Hardware profiles: what the target is and how to time a model on it.

A profile is YAML data in ``hwprofiles/`` (or any path), validated with pydantic so that a
typo in a key or a value outside its range is reported with the file and the field instead
of silently changing what is measured.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolchain.errors import InputError

PROFILE_DIRS_ENV = "PETRI_HWPROFILES"
BUNDLED_PROFILE_DIR = Path(__file__).resolve().parent.parent / "hwprofiles"


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


class HardwareProfile(BaseModel):
    """One measuring target. Unknown keys are errors: a misspelt key must not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    description: str = ""
    backend: Literal["onnxruntime"] = "onnxruntime"
    device: Literal["cpu"] = "cpu"
    precision: Literal["fp32"] = "fp32"
    batch_size: int = Field(1, ge=1)
    threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads")
    allow_spinning: bool = True
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    budget_statistic: Literal["median", "mean", "p90", "p99"] = "median"
    timing: TimingSettings = TimingSettings()


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
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"{path}: field {field!r}: {first['msg']}") from exc


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
    }
