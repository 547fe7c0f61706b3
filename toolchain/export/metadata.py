"""The schema of a bundle's ``metadata.json`` for the parts a deployment reads.

``petri predict`` and ``petri verify`` trust a bundle only after this check, so a damaged or
hand-edited file is one clear error, not a crash or a silently wrong answer (a zero std
would turn every prediction into NaN). Fields the readers do not use are kept unchecked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator
from pydantic import ValidationError as PydanticValidationError

from toolchain.errors import InputError

CHANNELS = {"L": 1, "RGB": 3}  # colour mode -> channels of the model's input
Fraction = float  # an accuracy, checked to lie in [0, 1] by Field


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class InputSpec(_Part):
    name: str = Field(min_length=1)
    shape: tuple[
        str | PositiveInt, PositiveInt, PositiveInt, PositiveInt
    ]  # N (maybe named), C, H, W


class PreprocessingSpec(_Part):
    color_mode: Literal["L", "RGB"]
    resize: tuple[PositiveInt, PositiveInt] | None  # (height, width)
    scale: PositiveFloat
    mean: list[float]
    std: list[PositiveFloat]

    @model_validator(mode="after")
    def one_value_per_channel(self) -> PreprocessingSpec:
        channels = CHANNELS[self.color_mode]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"mean and std need {channels} values for color_mode {self.color_mode}"
            )
        return self


class AccuracySpec(_Part):
    validation: Fraction = Field(ge=0.0, le=1.0)
    test: Fraction = Field(ge=0.0, le=1.0)


class LatencySpec(_Part):
    budget_statistic: str
    stats: dict[str, object]  # numbers, and the median's interval as a pair
    device_facts: dict[str, object]

    @model_validator(mode="after")
    def has_its_statistic(self) -> LatencySpec:
        value = self.stats.get(self.budget_statistic)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"stats.{self.budget_statistic} must be a positive number of ms")
        if "name" not in self.device_facts:
            raise ValueError("device_facts needs the name of the device measured on")
        return self


class DatasetSpec(_Part):
    spec: str = Field(min_length=1)
    location: str | None = None  # the absolute path of an image folder; bundles before: none

    @property
    def where(self) -> str:
        """The dataset as --dataset takes it, found from any working folder when possible."""
        return f"imagefolder:{self.location}" if self.location else self.spec

    test_items: list[str] = Field(min_length=1)


class BundleMetadata(_Part):
    input: InputSpec
    preprocessing: PreprocessingSpec
    classes: list[str] = Field(min_length=2)
    accuracy: AccuracySpec
    latency: LatencySpec
    profile: dict[str, object]  # validated as a HardwareProfile by the one who measures
    dataset: DatasetSpec
    checksums: dict[str, str] = {}  # file name -> sha256; bundles before checksums have none

    @model_validator(mode="after")
    def input_matches_preprocessing(self) -> BundleMetadata:
        _, channels, height, width = self.input.shape
        if channels != CHANNELS[self.preprocessing.color_mode]:
            raise ValueError(
                f"input has {channels} channels, color_mode {self.preprocessing.color_mode} gives "
                f"{CHANNELS[self.preprocessing.color_mode]}"
            )
        resize = self.preprocessing.resize
        if resize is not None and tuple(resize) != (height, width):
            raise ValueError(f"resize {list(resize)} differs from the input's {height}x{width}")
        return self

    @property
    def latency_ms(self) -> float:
        """The recorded figure compared with the budget."""
        return float(self.latency.stats[self.latency.budget_statistic])  # type: ignore[arg-type]

    @property
    def chw(self) -> tuple[int, int, int]:
        _, c, h, w = self.input.shape
        return (c, h, w)


def read_metadata(folder: Path, name: str) -> BundleMetadata:
    """The bundle's metadata, checked; one InputError line for whatever is wrong with it."""
    if not folder.exists():
        raise InputError(f"bundle folder {folder} does not exist; pass the --out of `petri export`")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; pass the --out folder of `petri export`")
    path = folder / name
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{folder} has no {name}: it is not a petri bundle") from exc
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError: ValueErrors
        raise InputError(f"{path} is damaged ({exc}); export the bundle again") from exc
    try:
        return BundleMetadata.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise InputError(
            f"{path} is damaged: {where}: {first['msg']}; export the bundle again"
        ) from exc
