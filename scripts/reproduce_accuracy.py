#!/usr/bin/env python3
"""Recompute an exported model's test accuracy from the bundle alone.

Uses ONNX Runtime, numpy and the bundle's metadata.json; Pillow decodes the image files
(scikit-learn supplies the embedded digits). Nothing of petri or PyTorch is imported, so this
is what a deployment that reads the metadata would compute.

    python scripts/reproduce_accuracy.py deploy/ --data ../shared/data/cifar10-jpeg.tar.gz

Exit 0 when the accuracy is within --tolerance points of the recorded one, 1 when it is not,
2 when the bundle or the data cannot be read.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort


def read_images(data: Path, items: list[str], prep: dict) -> np.ndarray:
    """(N, H, W, C) float32 in [0, 1], decoded as the metadata says."""
    from PIL import Image

    def decode(raw: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(raw)) as img:
            if img.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit: value >> 8, as petri does
                img = Image.fromarray(
                    (np.asarray(img, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
                )
            img = img.convert(prep["color_mode"])
            if prep["resize"]:
                height, width = prep["resize"]
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
        return arr[..., None] if arr.ndim == 2 else arr

    if data.is_dir():
        decoded = {name: decode((data / name).read_bytes()) for name in items}
    else:
        wanted, decoded = set(items), {}
        with tarfile.open(data) as tar:
            for member in tar:
                if member.name in wanted:
                    decoded[member.name] = decode(tar.extractfile(member).read())
    return np.stack([decoded[name] for name in items]).astype(np.float32) / prep["scale"]


def read_digits(items: list[str], prep: dict, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits at the bundle's test indices: pixels as above, and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    index = [int(item.split(":", 1)[1]) for item in items]
    labels = np.asarray([classes.index(str(bunch.target[i])) for i in index])
    return bunch.images[index].astype(np.float32)[..., None] / prep["scale"], labels


def main() -> int:
    try:
        return reproduce()
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        # json.JSONDecodeError is a ValueError; a missing file or image is an OSError.
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2


def reproduce() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", type=Path, help="folder written by `petri export`")
    parser.add_argument("--data", type=Path, help="the image folder or tarball (not for digits)")
    parser.add_argument("--tolerance", type=float, default=0.5, help="allowed difference, points")
    args = parser.parse_args()

    meta = json.loads((args.bundle / "metadata.json").read_text())
    prep, dataset = meta["preprocessing"], meta["dataset"]
    items = dataset["test_items"]
    classes = meta["classes"]
    if dataset["spec"] == "digits":
        pixels, labels = read_digits(items, prep, classes)
    else:
        if args.data is None:
            parser.error(f"this bundle was trained on {dataset['spec']}; pass --data PATH")
        pixels = read_images(args.data, items, prep)
        labels = np.asarray([classes.index(Path(item).parts[-2]) for item in items])
    x = (pixels - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    session = ort.InferenceSession(
        str(args.bundle / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    name = meta["input"]["name"]
    logits = np.concatenate(
        [session.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)]
    )
    reproduced = float((logits.argmax(1) == labels).mean())
    recorded = meta["accuracy"]["test"]
    diff = abs(reproduced - recorded) * 100
    print(
        f"test accuracy: recorded {recorded:.2%}, reproduced {reproduced:.2%} on {len(labels)} "
        f"images, difference {diff:.2f} points (tolerance {args.tolerance})"
    )
    return 0 if diff <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
