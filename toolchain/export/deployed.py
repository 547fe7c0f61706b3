"""A bundle as a deployment uses it: ``metadata.json``, ``model.onnx`` under ONNX Runtime, and
the recorded preprocessing applied to image files. Nothing here needs PyTorch or the study.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.errors import InputError
from toolchain.export.metadata import read_metadata
from toolchain.images import color_mode, decode_image

METADATA = "metadata.json"
MODEL = "model.onnx"
BATCH = 256  # images per ONNX Runtime call


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
    """An exported folder, checked on opening: its metadata is whole, its files are the
    exported ones, and the model's input and output agree with the metadata."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta = read_metadata(folder, METADATA)
        self.model_path = folder / MODEL
        if not self.model_path.is_file():
            raise InputError(f"{folder} has no {MODEL}; export the bundle again")
        for name, recorded in self.meta.checksums.items():
            if not (folder / name).is_file() or sha256(folder / name) != recorded:
                raise InputError(
                    f"{folder / name} is not the file that was exported (its sha256 differs "
                    f"from {METADATA}'s): it was replaced or damaged; export the bundle again"
                )

    @property
    def classes(self) -> list[str]:
        return self.meta.classes

    @cached_property
    def session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        try:
            session = ort.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise InputError(f"{self.model_path} cannot be loaded by ONNX Runtime: {exc}") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        width = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if [i.name for i in inputs] != [self.meta.input.name] or width != len(self.classes):
            raise InputError(
                f"{METADATA} does not describe {self.model_path} (input {self.meta.input.name!r} "
                f"and {len(self.classes)} classes, the model has inputs "
                f"{[i.name for i in inputs]} and {width} outputs); export the bundle again"
            )
        return session

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, C) uint8 pixels -> the model's (N, C, H, W) float32 input."""
        prep = self.meta.preprocessing
        unit = pixels.astype(np.float32) / prep.scale
        x = (unit - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        x = self.normalise(pixels)
        name = self.meta.input.name
        return np.concatenate(
            [self.session.run(None, {name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        )

    def decode(self, data: bytes, name: str, same_mode: bool = True) -> np.ndarray:
        """One image file's pixels as the model reads them. With ``same_mode``, an image of
        another colour mode is refused, not converted silently (the search converted a grey
        image among colour ones, so reading its own data back does not ask for it)."""
        from PIL import Image, UnidentifiedImageError

        prep = self.meta.preprocessing
        try:
            with Image.open(io.BytesIO(data)) as img:
                native = color_mode(img.mode)
            pixels = decode_image(data, prep.color_mode, prep.resize)
        except Image.DecompressionBombError as exc:
            raise InputError(f"{name} is too large to decode safely ({exc})") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(f"{name} is not a readable image file; pass a JPEG or PNG") from exc
        channels, height, width = self.meta.chw
        if same_mode and native != prep.color_mode:
            raise InputError(
                f"{name} is a {_describe(native)} image; the model takes {channels}-channel "
                f"{_describe(prep.color_mode)} images: convert it first"
            )
        if pixels.shape[:2] != (height, width):
            raise InputError(
                f"{name} is {pixels.shape[1]}x{pixels.shape[0]} pixels; the model takes "
                f"{width}x{height}: resize it first"
            )
        return pixels

    def predict(self, paths: list[Path]) -> list[Prediction]:
        """The most probable class of each image file, with its softmax probability."""
        for path in paths:
            if not path.exists():
                raise InputError(f"image {path} does not exist")
            if not path.is_file():
                raise InputError(f"image {path} is not a file; pass image files")
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


def _describe(mode: str) -> str:
    return {"L": "grey-scale", "RGB": "colour"}.get(mode, mode)
