"""``petri verify``: recompute a bundle's accuracy and latency from the bundle alone.

The accuracy comes from the bundle's ``model.onnx`` under ONNX Runtime on the test images its
metadata lists, read from the dataset and preprocessed as the metadata says; the latency from
measuring that file with the profile the metadata records. Both are compared with the
recorded figures: what a deployment gets if it follows the bundle.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.export.deployed import Bundle
from toolchain.images import read_files

IMAGEFOLDER = "imagefolder:"


@dataclass(frozen=True)
class Check:
    what: str  # "accuracy" or "latency"
    recorded: float
    measured: float
    ok: bool
    line: str  # what `petri verify` prints for it


def verify_bundle(
    bundle: Bundle,
    dataset: str | None,
    accuracy_points: float,
    latency_fraction: float,
) -> list[Check]:
    """Both checks; ``dataset`` None reads the test images from where the search read them."""
    return [
        check_accuracy(bundle, dataset or bundle.meta.dataset.where, accuracy_points),
        check_latency(bundle, latency_fraction),
    ]


def check_accuracy(bundle: Bundle, dataset: str, tolerance_points: float) -> Check:
    pixels, labels = read_test_images(bundle, dataset)
    measured = float((bundle.logits(pixels).argmax(1) == labels).mean())
    recorded = bundle.meta.accuracy.test
    diff = abs(measured - recorded) * 100
    ok = diff <= tolerance_points
    line = (
        f"test accuracy: recorded {recorded:.2%}, reproduced {measured:.2%} on {len(labels)} "
        f"images (difference {diff:.2f} points, tolerance {tolerance_points:g}): "
        f"{'ok' if ok else 'FAILED'}"
    )
    return Check("accuracy", recorded, measured, ok, line)


def check_latency(bundle: Bundle, tolerance: float) -> Check:
    from pydantic import ValidationError

    from toolchain.bench import Target
    from toolchain.hw import HardwareProfile

    try:
        profile = HardwareProfile.model_validate(bundle.meta.profile)
    except ValidationError as exc:
        raise InputError(
            f"the profile in {bundle.folder}/metadata.json is damaged: "
            f"{exc.errors()[0]['msg']}; export the bundle again"
        ) from exc
    record = Target.here(profile).measure_file(bundle.model_path)
    statistic = bundle.meta.latency.budget_statistic
    recorded = bundle.meta.latency_ms
    measured = record.latency_ms
    ratio = measured / recorded
    ok = abs(ratio - 1.0) <= tolerance
    then, now = bundle.meta.latency.device_facts["name"], record.device_facts["name"]
    where = f"on {now}" if then == now else f"here on {now}, recorded on {then}"
    line = (
        f"latency ({statistic}, {profile.name}): recorded {recorded:.4f} ms, measured "
        f"{measured:.4f} ms {where} (ratio {ratio:.2f}, tolerance ±{tolerance:.0%}): "
        f"{'ok' if ok else 'FAILED'}" + (" (unstable measurement)" if record.unstable else "")
    )
    return Check("latency", recorded, measured, ok, line)


def read_test_images(bundle: Bundle, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's test images as (N, H, W, C) pixels and their label indices."""
    items = bundle.meta.dataset.test_items
    trained_on_digits = bundle.meta.dataset.spec == "digits"
    if (dataset == "digits") != trained_on_digits:
        raise InputError(
            f"this bundle was trained on {bundle.meta.dataset.spec}; pass --dataset "
            f"{'digits' if trained_on_digits else 'imagefolder:PATH'}"
        )
    if dataset == "digits":
        return _digits(bundle, items)
    if not dataset.startswith(IMAGEFOLDER) or dataset == IMAGEFOLDER:
        raise InputError(
            f"unknown dataset {dataset!r}; pass --dataset imagefolder:PATH (the data the model "
            "was trained on) or digits"
        )
    return _imagefolder(bundle, Path(dataset.removeprefix(IMAGEFOLDER)), items)


def _imagefolder(bundle: Bundle, location: Path, items: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The items from a folder or tarball, decoded as the search decoded them."""
    if not location.exists():
        raise InputError(f"dataset path {location} does not exist; pass --dataset imagefolder:PATH")
    if location.is_file() and not tarfile.is_tarfile(location):
        raise InputError(f"{location} is neither a folder nor a .tar/.tar.gz archive")
    if location.is_file():
        files = dict(read_files(location, set(items)))
    else:
        files = {
            item: (location / item).read_bytes() for item in items if (location / item).is_file()
        }
    missing = [item for item in items if item not in files]
    if missing:
        raise InputError(
            f"{location} lacks {len(missing)} of the bundle's {len(items)} test images (such as "
            f"{missing[0]}); pass the dataset the model was trained on"
        )
    pixels = np.stack([bundle.decode(files[item], item, same_mode=False) for item in items])
    return pixels, _labels(bundle, [Path(item).parts[-2] for item in items])


def _digits(bundle: Bundle, items: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = [_digit_index(item, len(digits.images)) for item in items]
    labels = _labels(bundle, [str(digits.target[i]) for i in index])
    return digits.images[index].astype(np.float32)[..., None], labels


def _digit_index(item: str, count: int) -> int:
    prefix, _, number = item.partition(":")
    if prefix != "digits" or not number.isdigit() or int(number) >= count:
        raise InputError(
            f"test item {item!r} in metadata.json is not one of the {count} digits; "
            "export the bundle again"
        )
    return int(number)


def _labels(bundle: Bundle, names: list[str]) -> np.ndarray:
    unknown = sorted(set(names) - set(bundle.classes))
    if unknown:
        raise InputError(f"class {unknown[0]!r} of the dataset is not one of the bundle's classes")
    return np.asarray([bundle.classes.index(name) for name in names])
