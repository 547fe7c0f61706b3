"""An ONNX file's inputs and the concrete shapes to measure it at.

A dynamic first dimension is the batch: it takes the profile's batch size. Any other dynamic
dimension needs a value from ``--shape NAME:1x3x32x32``; without one it is an error that names
the input, because a latency at a guessed shape is not the deployed model's latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.errors import InputError

Dim = int | str | None  # a fixed size, a named dynamic size, or an unnamed dynamic one
MAX_INPUT_BYTES = 1 << 30  # beyond this a --shape is a typo, not a model to time


@dataclass(frozen=True)
class InputSpec:
    name: str
    dims: tuple[Dim, ...]
    dtype: np.dtype

    @property
    def dynamic(self) -> bool:
        return any(not isinstance(d, int) for d in self.dims)


def read_inputs(onnx_path: Path) -> list[InputSpec]:
    """The graph's real inputs (initialisers that older exporters list as inputs excluded)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    model = load_onnx(onnx_path, load_external_data=False)
    initialisers = {init.name for init in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initialisers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(_dim(d) for d in tensor.shape.dim)
        specs.append(
            InputSpec(value.name, dims, np.dtype(tensor_dtype_to_np_dtype(tensor.elem_type)))
        )
    return specs


def _dim(dim: object) -> Dim:
    if dim.HasField("dim_value"):  # type: ignore[attr-defined]
        return int(dim.dim_value)  # type: ignore[attr-defined]
    return dim.dim_param or None  # type: ignore[attr-defined]


def load_onnx(path: Path, load_external_data: bool = True):  # -> onnx.ModelProto
    """The ONNX model at ``path``; a missing or non-ONNX file is bad input."""
    import onnx

    if path.is_dir():
        raise InputError(f"{path} is a folder; give an .onnx file")
    if not path.is_file():
        raise InputError(f"{path} does not exist (give an .onnx file)")
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as exc:  # protobuf raises its own DecodeError; anything here means "not ONNX"
        raise InputError(f"{path} is not an ONNX model ({exc.__class__.__name__})") from exc


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME:1x3x32x32`` -> (NAME, (1, 3, 32, 32))."""
    name, sep, dims = text.rpartition(":")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 1:
        raise InputError(f"--shape {text!r} must look like NAME:1x3x32x32 (positive sizes)")
    return name, shape


def parse_shapes(texts: tuple[str, ...] | list[str]) -> dict[str, tuple[int, ...]]:
    """Every ``--shape``, each input named once."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in texts:
        name, shape = parse_shape(text)
        if name in shapes:
            raise InputError(f"--shape {name} is given twice; give each input once")
        shapes[name] = shape
    return shapes


def resolve_shapes(
    specs: list[InputSpec], batch_size: int, given: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """The shape each input is measured at: ``given``, else fixed dims and the batch size."""
    names = [s.name for s in specs]
    for name in given:
        if name not in names:
            listed = ", ".join(names) or "none"
            raise InputError(f"--shape names no input {name!r}; the model's inputs: {listed}")
    shapes = {}
    for spec in specs:
        if spec.name in given:
            shapes[spec.name] = _checked(spec, given[spec.name])
            continue
        dims = [
            batch_size if i == 0 and not isinstance(d, int) else d for i, d in enumerate(spec.dims)
        ]
        if not all(isinstance(d, int) for d in dims):
            hint = f"--shape {spec.name}:{_example(spec.dims)}"
            raise InputError(
                f"input {spec.name!r} has a dynamic dimension other than the batch "
                f"({_show(spec.dims)}); give its size with {hint}"
            )
        shapes[spec.name] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        if 0 in shapes[spec.name]:
            raise InputError(f"input {spec.name!r} has a zero-sized dimension ({_show(spec.dims)})")
    return shapes


def _checked(spec: InputSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A --shape must keep the input's rank and its fixed sizes."""
    fits = len(shape) == len(spec.dims) and all(
        not isinstance(d, int) or d == s for d, s in zip(spec.dims, shape, strict=True)
    )
    if not fits:
        given = "x".join(map(str, shape))
        raise InputError(f"--shape {spec.name}:{given} does not fit the input's {_show(spec.dims)}")
    return shape


def _show(dims: tuple[Dim, ...]) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def _example(dims: tuple[Dim, ...]) -> str:
    return "x".join(str(d) if isinstance(d, int) else "N" for d in dims)


def example_inputs(
    specs: list[InputSpec], shapes: dict[str, tuple[int, ...]], seed: int = 0
) -> dict[str, np.ndarray]:
    """Random data of each input's type and shape: what latency is measured on."""
    for spec in specs:
        size = int(np.prod(shapes[spec.name], dtype=np.float64)) * spec.dtype.itemsize
        if size > MAX_INPUT_BYTES:
            written = "x".join(map(str, shapes[spec.name]))
            raise InputError(
                f"input {spec.name!r} at {written} would take {size / 2**30:.1f} GiB; "
                f"petri profile measures inputs up to {MAX_INPUT_BYTES / 2**30:.0f} GiB "
                "(give a smaller --shape or batch size)"
            )
    rng = np.random.default_rng(seed)
    out = {}
    for spec in specs:
        shape = shapes[spec.name]
        if np.issubdtype(spec.dtype, np.floating):
            out[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype == np.bool_:
            out[spec.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            out[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return out
