from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from toolchain.data import Dataset, load_dataset
from toolchain.errors import InputError


def _class_counts(labels: torch.Tensor, n_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=n_classes).tolist()


def test_digits_splits_are_disjoint_stratified_and_normalised(digits: Dataset) -> None:
    assert digits.input_shape == (1, 8, 8)
    assert len(digits.classes) == 10
    items = [set(s.items) for s in (digits.train, digits.val, digits.test)]
    assert sum(len(i) for i in items) == 1797
    assert not (items[0] & items[1] or items[0] & items[2] or items[1] & items[2])
    for split in (digits.val, digits.test):
        assert min(_class_counts(split.labels, 10)) > 0
    assert abs(float(digits.train.images.mean())) < 1e-4
    assert abs(float(digits.train.images.std()) - 1.0) < 1e-2


def test_split_depends_on_seed_only() -> None:
    a = load_dataset("digits", seed=3)
    b = load_dataset("digits", seed=3)
    c = load_dataset("digits", seed=4)
    assert a.val.items == b.val.items
    assert a.val.items != c.val.items


def test_imagefolder_tarball_subset_is_stratified(mini_cifar: Path) -> None:
    data = load_dataset(f"imagefolder:{mini_cifar}", seed=0, subset=500, val_fraction=0.2)
    assert data.input_shape == (3, 32, 32)
    assert len(data.classes) == 10
    assert _class_counts(data.train.labels, 10) == [40] * 10
    assert _class_counts(data.val.labels, 10) == [10] * 10
    assert _class_counts(data.test.labels, 10) == [20] * 10  # the archive's own test/ split
    assert all("/test/" in "/" + item for item in data.test.items)


def test_folder_and_tarball_give_the_same_tensors(mini_cifar: Path, tmp_path: Path) -> None:
    with tarfile.open(mini_cifar) as tar:
        tar.extractall(tmp_path, filter="data")
    from_tar = load_dataset(f"imagefolder:{mini_cifar}", seed=1, subset=200)
    from_dir = load_dataset(f"imagefolder:{tmp_path}", seed=1, subset=200)
    assert from_tar.train.items == from_dir.train.items
    assert torch.equal(from_tar.train.images, from_dir.train.images)
    assert torch.equal(from_tar.test.labels, from_dir.test.labels)


def _folder(root: Path, sizes: dict[str, list[tuple[int, int]]], mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    for cls, shapes in sizes.items():
        (root / "train" / cls).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(shapes):
            channels = 3 if mode == "RGB" else 1
            pixels = rng.integers(0, 255, (h, w, channels), dtype=np.uint8).squeeze()
            Image.fromarray(pixels, mode).save(root / "train" / cls / f"{i}.png")
    return root


def test_grey_folder_without_test_split_holds_test_out(tmp_path: Path) -> None:
    root = _folder(tmp_path, {c: [(12, 12)] * 20 for c in "abc"}, mode="L")
    data = load_dataset(f"imagefolder:{root}", seed=0)
    assert data.input_shape == (1, 12, 12)
    assert _class_counts(data.test.labels, 3) == [4, 4, 4]
    assert data.preprocessing.color_mode == "L"


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": [(10, 10)] * 10, "b": [(14, 9)] * 10})
    with pytest.raises(InputError, match="--image-size"):
        load_dataset(f"imagefolder:{root}", seed=0)
    data = load_dataset(f"imagefolder:{root}", seed=0, image_size=16)
    assert data.input_shape == (3, 16, 16)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "does not exist"),
        (
            lambda root: (root / "train" / "empty").mkdir(parents=True),
            "train/empty holds no images",
        ),
        (
            lambda root: (root / "train" / "a" / "0.png").write_bytes(b"not a png"),
            "is not a readable image",
        ),
    ],
    ids=["missing", "empty-class", "broken-image"],
)
def test_bad_image_folders(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "data"
    if message != "does not exist":
        _folder(root, {"a": [(8, 8)] * 6, "b": [(8, 8)] * 6})
    make(root)
    with pytest.raises(InputError, match=message):
        load_dataset(f"imagefolder:{root}", seed=0)


def test_subset_larger_than_the_data(mini_cifar: Path) -> None:
    with pytest.raises(InputError, match="larger than the 1000 training images"):
        load_dataset(f"imagefolder:{mini_cifar}", seed=0, subset=5000)


def test_unknown_dataset_lists_what_exists() -> None:
    with pytest.raises(InputError, match="available: digits, imagefolder:PATH"):
        load_dataset("mnist", seed=0)


def test_truncated_archive_is_reported_as_damaged(mini_cifar: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(mini_cifar.read_bytes()[: mini_cifar.stat().st_size // 2])
    with pytest.raises(InputError, match="damaged or truncated"):
        load_dataset(f"imagefolder:{cut}", seed=0)


def test_one_grey_image_among_colour_ones_keeps_rgb(tmp_path: Path) -> None:
    root = _folder(tmp_path, {c: [(8, 8)] * 10 for c in "ab"})
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "train" / "a" / "0.png")
    data = load_dataset(f"imagefolder:{root}", seed=0)
    assert data.input_shape == (3, 8, 8) and data.preprocessing.color_mode == "RGB"


def test_classes_too_small_to_stratify(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": [(8, 8)] * 20, "b": [(8, 8)] * 1})
    with pytest.raises(InputError, match="smallest class has 1"):
        load_dataset(f"imagefolder:{root}", seed=0)


def test_sixteen_bit_grey_images_keep_their_contrast(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in "ab":
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 65535, (8, 8), dtype=np.uint16)
            Image.fromarray(pixels).save(tmp_path / "train" / cls / f"{i}.png")
    data = load_dataset(f"imagefolder:{tmp_path}", seed=0)
    # Uniform 16-bit noise scaled to 8 bits has mean ~0.5 and std ~0.29 on [0, 1];
    # clipping at 255 would give a nearly white image (mean ~1, std ~0).
    assert data.input_shape == (1, 8, 8)
    assert 0.4 < data.preprocessing.mean[0] < 0.6 and data.preprocessing.std[0] > 0.2


def test_dataset_spellings_of_one_folder_are_one_dataset() -> None:
    from toolchain.data import canonical_spec

    assert canonical_spec("imagefolder:data/c10/") == canonical_spec("imagefolder:data/./c10")
    assert canonical_spec("digits") == "digits"
