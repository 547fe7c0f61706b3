"""Image files to pixels, the one way petri does it: for training (``toolchain.data``) and for a
deployed bundle (``petri predict``, ``petri verify``), which must see exactly the same pixels.

Needs Pillow and numpy only, so a bundle is used without PyTorch.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from toolchain.errors import InputError

SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")  # read as value >> 8
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


def color_mode(pil_mode: str) -> str:
    """The mode a model reads an image in: grey ones as "L", everything else as "RGB"."""
    return "L" if pil_mode in GREY_MODES else "RGB"


def decode_image(data: bytes, mode: str, resize: tuple[int, int] | None) -> np.ndarray:
    """Bytes of an image file -> (H, W, C) uint8, exactly as the export bundle documents it."""
    with Image.open(io.BytesIO(data)) as file:
        if file.mode in SIXTEEN_BIT_MODES:  # PIL would clip 16-bit values at 255: rescale
            file = Image.fromarray(
                (np.asarray(file, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
            )
        img = file.convert(mode)
    if resize is not None:
        img = img.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def read_files(location: Path, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the ``wanted`` relative paths in a folder or a tarball.

    A tarball is read in one sequential pass: random access into a .tar.gz re-reads it from
    the start for every file.
    """
    if location.is_dir():
        for name in sorted(wanted):
            yield name, (location / name).read_bytes()
        return
    with open_tar(location) as tar:
        for member in tar:
            if member.name in wanted:
                handle = tar.extractfile(member)
                assert handle is not None  # only regular files are listed
                yield member.name, handle.read()


@contextmanager
def open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """The archive, with a damaged one reported as bad input (gzip's EOFError included)."""
    try:
        with tarfile.open(path) as tar:
            yield tar
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise InputError(
            f"{path} is damaged or truncated ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
            "download or pack it again"
        ) from exc
