"""A bundle as a deployment uses it: ``metadata.json``, ``model.onnx`` under ONNX Runtime, and
the recorded preprocessing applied to image files. Nothing here needs PyTorch or the study.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.errors import InputError
from toolchain.images import color_mode, decode_image

METADATA = "metadata.json"
MODEL = "model.onnx"
BATCH = 256  # images per ONNX Runtime call
REQUIRED = ("input", "preprocessing", "classes", "accuracy", "latency", "profile", "dataset")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Prediction:
    image: str
    label: str
    probability: float


class Bundle:
    """An exported folder, checked on opening: its files are there and are the exported ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta = _read_metadata(folder)
        self.model_path = folder / MODEL
        if not self.model_path.is_file():
            raise InputError(f"{folder} has no {MODEL}; export the bundle again")
        for name, recorded in self.meta.get("checksums", {}).items():
            if not (folder / name).is_file() or sha256(folder / name) != recorded:
                raise InputError(
                    f"{folder / name} is not the file that was exported (its sha256 differs "
                    f"from {METADATA}'s): it was replaced or damaged; export the bundle again"
                )

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.meta["preprocessing"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def input_chw(self) -> tuple[int, int, int]:
        _, c, h, w = self.meta["input"]["shape"]
        return (int(c), int(h), int(w))

    @cached_property
    def session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        try:
            return ort.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise InputError(f"{self.model_path} cannot be loaded by ONNX Runtime: {exc}") from exc

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, C) uint8 pixels -> the model's (N, C, H, W) float32 input."""
        prep = self.preprocessing
        unit = pixels.astype(np.float32) / prep["scale"]
        x = (unit - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        x = self.normalise(pixels)
        name = self.meta["input"]["name"]
        return np.concatenate(
            [self.session.run(None, {name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        )

    def decode(self, data: bytes, name: str, same_mode: bool = True) -> np.ndarray:
        """One image file's pixels as the model reads them. With ``same_mode``, an image of
        another colour mode is refused, not converted silently (the search converted a grey
        image among colour ones, so reading its own data back does not ask for it)."""
        from PIL import Image, UnidentifiedImageError

        prep = self.preprocessing
        try:
            with Image.open(io.BytesIO(data)) as img:
                native = color_mode(img.mode)
            pixels = decode_image(data, prep["color_mode"], _size(prep["resize"]))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(f"{name} is not a readable image file; pass a JPEG or PNG") from exc
        channels, height, width = self.input_chw
        if same_mode and native != prep["color_mode"]:
            raise InputError(
                f"{name} is a {_describe(native)} image; the model takes {channels}-channel "
                f"{_describe(prep['color_mode'])} images: convert it first"
            )
        if pixels.shape[:2] != (height, width):
            raise InputError(
                f"{name} is {pixels.shape[1]}x{pixels.shape[0]} pixels; the model takes "
                f"{width}x{height}: resize it first"
            )
        return pixels

    def predict(self, paths: list[Path]) -> list[Prediction]:
        """The most probable class of each image file, with its softmax probability."""
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise InputError(f"image {missing[0]} does not exist")
        pixels = np.stack([self.decode(p.read_bytes(), str(p)) for p in paths])
        probabilities = softmax(self.logits(pixels))
        best = probabilities.argmax(1)
        return [
            Prediction(str(p), self.classes[k], float(probabilities[i, k]))
            for i, (p, k) in enumerate(zip(paths, best, strict=True))
        ]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _read_metadata(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise InputError(f"bundle folder {folder} does not exist; pass the --out of `petri export`")
    path = folder / METADATA
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{folder} has no {METADATA}: it is not a petri bundle") from exc
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError: ValueErrors
        raise InputError(f"{path} is damaged ({exc}); export the bundle again") from exc
    missing = [key for key in REQUIRED if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise InputError(f"{path} is damaged: it has no {missing[0]!r}; export the bundle again")
    return dict(meta)


def _size(resize: list[int] | None) -> tuple[int, int] | None:
    return None if resize is None else (int(resize[0]), int(resize[1]))


def _describe(mode: str) -> str:
    return {"L": "grey-scale", "RGB": "colour"}.get(mode, mode)
