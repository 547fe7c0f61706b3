"""Datasets (DESIGN §6): ``digits`` (embedded) and ``imagefolder:PATH`` (a folder or a tarball).

Every dataset ends up as tensors in memory, normalised with the training split's per-channel
mean and std, split into train / validation / test. Subsets and splits are stratified and
shuffled with the run's seed, because image folders are sorted by class on disk.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from sklearn.model_selection import train_test_split

from toolchain.errors import InputError
from toolchain.images import color_mode, decode_image, open_tar, read_files

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
TEST_FRACTION_WHEN_MISSING = 0.2
DATASET_NAMES = ("digits", "imagefolder:PATH")


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, C, H, W) float32, normalised
    labels: torch.Tensor  # (N,) int64
    items: tuple[str, ...]  # where each image came from, for reproducing a figure elsewhere


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the model's input; written into every export bundle."""

    color_mode: str  # "L" or "RGB" (PIL modes)
    resize: tuple[int, int] | None  # (height, width) with bilinear resampling, or None
    scale: float  # raw pixel value -> [0, 1]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class Dataset:
    spec: str
    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    preprocessing: Preprocessing
    hflip: bool  # whether horizontal flips are a valid augmentation (not for digits)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        _, c, h, w = self.train.images.shape
        return (c, h, w)


@dataclass(frozen=True)
class RawSplit:
    """Images before normalisation: uint8 or float pixels in (N, H, W, C)."""

    pixels: np.ndarray
    labels: np.ndarray
    items: tuple[str, ...]


@dataclass(frozen=True)
class RawData:
    """What a source yields before the validation split and normalisation."""

    pool: RawSplit  # training images; validation comes out of these
    test: RawSplit
    classes: tuple[str, ...]
    color_mode: str
    resize: tuple[int, int] | None
    scale: float
    hflip: bool


def load_dataset(
    spec: str,
    *,
    seed: int,
    subset: int | None = None,
    val_fraction: float = 0.1,
    image_size: int | None = None,
) -> Dataset:
    """Load ``digits`` or ``imagefolder:PATH``; ``subset`` caps the training pool, stratified."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    if subset is not None and subset < 1:
        raise InputError(f"--subset must be a positive number of images, got {subset}")
    raw = _read_source(spec, seed, subset, image_size)
    train, val = stratified_split(raw.pool, val_fraction, seed)
    mean, std = channel_stats(train.pixels, raw.scale)
    prep = Preprocessing(raw.color_mode, raw.resize, raw.scale, mean, std)
    return Dataset(
        spec=spec,
        classes=raw.classes,
        train=normalise(train, prep),
        val=normalise(val, prep),
        test=normalise(raw.test, prep),
        preprocessing=prep,
        hflip=raw.hflip,
    )


def canonical_spec(spec: str) -> str:
    """One spelling per dataset: ``imagefolder:x/`` and ``imagefolder:x`` are one study's data."""
    if spec.startswith("imagefolder:") and spec != "imagefolder:":
        return "imagefolder:" + os.path.normpath(spec.removeprefix("imagefolder:"))
    return spec


def _read_source(spec: str, seed: int, subset: int | None, image_size: int | None) -> RawData:
    if spec == "digits":
        if image_size is not None:
            raise InputError("--image-size applies to imagefolder datasets only")
        return _load_digits(seed, subset)
    if spec.startswith("imagefolder:"):
        return ImageFolderSource(spec.removeprefix("imagefolder:"), image_size).load(seed, subset)
    raise InputError(f"unknown dataset {spec!r}; available: {', '.join(DATASET_NAMES)}")


def _load_digits(seed: int, subset: int | None) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = bunch.images.astype(np.float32)[..., None]  # (N, 8, 8, 1), values 0..16
    items = tuple(f"digits:{i}" for i in range(len(pixels)))
    whole = RawSplit(pixels, bunch.target.astype(np.int64), items)
    # digits has no test split of its own: hold one out, stratified, before anything else.
    pool, test = stratified_split(whole, TEST_FRACTION_WHEN_MISSING, seed)
    if subset is not None:
        pool = stratified_subset(pool, subset, seed)
    classes = tuple(str(c) for c in bunch.target_names)
    # Mirrored digits are other symbols: no flips.
    return RawData(pool, test, classes, "L", None, 16.0, hflip=False)


def stratified_split(raw: RawSplit, fraction: float, seed: int) -> tuple[RawSplit, RawSplit]:
    """Split off ``fraction`` of ``raw``, stratified by label, shuffled by ``seed``."""
    n_held = max(int(round(len(raw.labels) * fraction)), 1)
    n_classes = len(np.unique(raw.labels))
    if n_held < n_classes or len(raw.labels) - n_held < n_classes:
        raise InputError(
            f"{len(raw.labels)} images are too few to hold out {fraction:.0%} with each of the "
            f"{n_classes} classes on both sides of the split; use more images or a larger --subset"
        )
    keep, held = _stratified(raw, seed, test_size=n_held)
    return take(raw, keep), take(raw, held)


def stratified_subset(raw: RawSplit, n: int, seed: int) -> RawSplit:
    if n > len(raw.labels):
        raise InputError(f"--subset {n} is larger than the {len(raw.labels)} training images")
    if n == len(raw.labels):
        return raw
    chosen, _ = _stratified(raw, seed, train_size=n)
    return take(raw, np.sort(chosen))


def _stratified(raw: RawSplit, seed: int, **size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's stratified split, its refusals turned into a user error."""
    try:
        first, second = train_test_split(
            np.arange(len(raw.labels)), stratify=raw.labels, random_state=seed, **size
        )
    except ValueError as exc:
        counts = np.bincount(raw.labels)
        raise InputError(
            f"cannot split {len(raw.labels)} images stratified by class (the smallest class has "
            f"{counts[counts > 0].min()}): use more images per class or a larger --subset"
        ) from exc
    return first, second


def take(raw: RawSplit, index: np.ndarray) -> RawSplit:
    return RawSplit(raw.pixels[index], raw.labels[index], tuple(raw.items[i] for i in index))


def channel_stats(pixels: np.ndarray, scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    flat = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / scale
    std = np.maximum(flat.std(axis=0), 1e-6)  # a constant channel must not divide by zero
    return tuple(float(m) for m in flat.mean(axis=0)), tuple(float(s) for s in std)


def normalise(raw: RawSplit, prep: Preprocessing) -> Split:
    unit = raw.pixels.astype(np.float32) / prep.scale
    x = (unit - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return Split(images, torch.from_numpy(raw.labels.astype(np.int64)), raw.items)


class ImageFolderSource:
    """``train/<class>/*`` and optionally ``test/<class>/*``, in a folder or a tarball.

    Only the file list is read up front; images are decoded for the chosen subset alone, in
    one sequential pass for tarballs (random access into a .tar.gz re-reads it from the start).
    """

    def __init__(self, location: str, image_size: int | None) -> None:
        if not location:
            raise InputError(
                "imagefolder: needs a path, e.g. imagefolder:data/ or imagefolder:data.tar.gz"
            )
        self.location = location
        self.path = Path(location)
        if image_size is not None and image_size < 4:
            raise InputError(f"--image-size must be at least 4 pixels, got {image_size}")
        self.resize = (image_size, image_size) if image_size else None
        if not self.path.exists():
            raise InputError(f"dataset path {location} does not exist")
        self.is_tar = self.path.is_file()
        if self.is_tar and not tarfile.is_tarfile(self.path):
            raise InputError(f"{location} is neither a folder nor a .tar/.tar.gz archive")
        self.files = self._list_files()
        self.classes = self._classes()
        self.color_mode = "RGB"

    def _list_files(self) -> dict[str, list[tuple[str, str]]]:
        """split -> [(class, relative path)], sorted, with any top folder of a tarball removed."""
        names, dirs = self._list_entries()
        found: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
        empty_dirs = _class_dirs(dirs)
        for name in sorted(names):
            parts = Path(name).parts
            idx = next((i for i, p in enumerate(parts) if p in found), None)
            if (
                idx is None
                or len(parts) - idx != 3
                or Path(name).suffix.lower() not in IMAGE_SUFFIXES
            ):
                continue
            found[parts[idx]].append((parts[idx + 1], name))
            empty_dirs.discard((parts[idx], parts[idx + 1]))
        if empty_dirs:
            split, cls = sorted(empty_dirs)[0]
            raise InputError(f"{self.location}: class folder {split}/{cls} holds no images")
        if not found["train"]:
            raise InputError(
                f"{self.location} has no images under train/<class>/; expected the image-folder "
                "layout train/<class>/<image> (and optionally test/<class>/<image>)"
            )
        return found

    def _list_entries(self) -> tuple[list[str], list[str]]:
        """(files, folders), relative paths, in one pass: a .tar.gz is read whole every time."""
        if self.is_tar:
            with open_tar(self.path) as tar:
                members = tar.getmembers()
            return [m.name for m in members if m.isfile()], [m.name for m in members if m.isdir()]
        paths = list(self.path.rglob("*"))
        relative = [(str(p.relative_to(self.path)), p.is_dir()) for p in paths]
        return [n for n, is_dir in relative if not is_dir], [n for n, is_dir in relative if is_dir]

    def _classes(self) -> list[str]:
        classes = sorted({cls for cls, _ in self.files["train"]})
        unknown = sorted({cls for cls, _ in self.files["test"]} - set(classes))
        if unknown:
            raise InputError(f"{self.location}: test class {unknown[0]!r} has no train/ folder")
        if len(classes) < 2:
            raise InputError(f"{self.location}: found {len(classes)} class; need at least 2")
        return classes

    def _raw(self, entries: Sequence[tuple[str, str]]) -> RawSplit:
        """A split of file names only (zero-sized pixels): subsets are chosen before decoding."""
        labels = np.asarray([self.classes.index(cls) for cls, _ in entries], dtype=np.int64)
        return RawSplit(
            np.empty((len(entries), 0, 0, 0), np.uint8), labels, tuple(n for _, n in entries)
        )

    def load(self, seed: int, subset: int | None) -> RawData:
        pool = self._raw(self.files["train"])
        if subset is not None:
            pool = stratified_subset(pool, subset, seed)
        if self.files["test"]:
            test = self._raw(self.files["test"])
        else:
            pool, test = stratified_split(pool, TEST_FRACTION_WHEN_MISSING, seed)
        pixels = self._decode(pool.items + test.items)
        n = len(pool.items)
        return RawData(
            pool=RawSplit(pixels[:n], pool.labels, pool.items),
            test=RawSplit(pixels[n:], test.labels, test.items),
            classes=tuple(self.classes),
            color_mode=self.color_mode,
            resize=self.resize,
            scale=255.0,
            hflip=True,  # natural images; a folder of text or digits would want this off
        )

    def _decode(self, names: tuple[str, ...]) -> np.ndarray:
        files = dict(read_files(self.path, set(names)))
        # One grey image among colour ones must not make the whole model grey.
        modes = {_color_mode_of(data, name, self.location) for name, data in files.items()}
        self.color_mode = "L" if modes == {"L"} else "RGB"
        arrays: dict[str, np.ndarray] = {}
        for name, data in files.items():
            try:
                arrays[name] = decode_image(data, self.color_mode, self.resize)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise _unreadable(self.location, name) from exc
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) > 1:
            raise InputError(
                f"{self.location}: images differ in size ({', '.join(map(str, sorted(shapes)[:3]))}"
                "); pass --image-size N to resize them all to N x N"
            )
        return np.stack([arrays[n] for n in names])


def _class_dirs(dirs: list[str]) -> set[tuple[str, str]]:
    """Every (split, class) folder among ``dirs``, to find the empty ones."""
    out = set()
    for d in dirs:
        parts = Path(d).parts
        if len(parts) >= 2 and parts[-2] in ("train", "test"):
            out.add((parts[-2], parts[-1]))
    return out


def _color_mode_of(data: bytes, name: str, location: str) -> str:
    """Grey-scale images give 1-channel models; everything else is read as RGB."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return color_mode(img.mode)
    except (UnidentifiedImageError, OSError) as exc:
        raise _unreadable(location, name) from exc


def _unreadable(location: str, name: str) -> InputError:
    return InputError(f"{location}: {name} is not a readable image; remove or replace it")
