"""Inputs of any ONNX file and the shapes `petri profile` measures them at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from toolchain.bench import Target
from toolchain.bench.inputs import (
    example_inputs,
    parse_shape,
    parse_shapes,
    read_inputs,
    resolve_shapes,
)
from toolchain.errors import InputError
from toolchain.hw import load_profile


def relu_model(path: Path, dims: list[int | str], op: str = "Relu", domain: str = "") -> Path:
    """A one-node graph: ``op`` on input ``x`` of shape ``dims`` (strings are dynamic)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], domain=domain)], "g", [x], [y])
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)  # what ORT 1.2x reads
    onnx.save(model, str(path))
    return path


def test_batch_from_the_profile_other_dynamic_dims_from_shape(tmp_path: Path) -> None:
    specs = read_inputs(relu_model(tmp_path / "m.onnx", ["N", 3, "H", 8]))
    assert [(s.name, s.dims, s.dtype) for s in specs] == [("x", ("N", 3, "H", 8), np.float32)]
    with pytest.raises(InputError, match=r"input 'x' has a dynamic dimension .*--shape x:Nx3xNx8"):
        resolve_shapes(specs, 4, {})
    assert resolve_shapes(specs, 4, {"x": (2, 3, 5, 8)}) == {"x": (2, 3, 5, 8)}
    with pytest.raises(InputError, match="does not fit the input's Nx3xHx8"):
        resolve_shapes(specs, 4, {"x": (2, 4, 5, 8)})
    fixed = read_inputs(relu_model(tmp_path / "f.onnx", ["batch", 3, 2, 2]))
    shapes = resolve_shapes(fixed, 4, {})
    assert shapes == {"x": (4, 3, 2, 2)}
    assert example_inputs(fixed, shapes)["x"].shape == (4, 3, 2, 2)
    with pytest.raises(InputError, match=r"input 'x' at 100000x3x2048x8 would take 18.3 GiB"):
        example_inputs(specs, resolve_shapes(specs, 4, {"x": (100_000, 3, 2048, 8)}))


def test_each_input_is_shaped_once_and_never_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--shape x is given twice"):
        parse_shapes(["x:1x3x8x8", "x:1x3x16x16"])
    zero = read_inputs(relu_model(tmp_path / "z.onnx", [1, 3, 0, 8]))
    with pytest.raises(InputError, match="input 'x' has a zero-sized dimension"):
        resolve_shapes(zero, 1, {})
    with pytest.raises(InputError, match="is a folder; give an .onnx file"):
        read_inputs(tmp_path)


@pytest.mark.parametrize("text", ["x", "x:", ":1x2", "x:1xa", "x:0x3", "x:-1x3"])
def test_malformed_shapes_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="must look like NAME:1x3x32x32"):
        parse_shape(text)


def test_names_with_colons_keep_them() -> None:
    assert parse_shape("encoder:input:1x3x8x8") == ("encoder:input", (1, 3, 8, 8))


def test_an_op_the_backend_cannot_run_is_bad_input(tmp_path: Path, fast_profile: Path) -> None:
    model = relu_model(tmp_path / "m.onnx", [1, 3, 4, 4], op="Frobnicate", domain="com.example")
    target = Target.here(load_profile(str(fast_profile)))
    with pytest.raises(InputError, match="ONNX Runtime cannot run m.onnx: .*Frobnicate") as info:
        target.measure_file(model)
    assert "onnxruntime::" not in str(info.value) and "\n" not in str(info.value)


def test_a_model_that_fails_while_running_is_bad_input(tmp_path: Path, fast_profile: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [5, 7])  # 48 values won't fit
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    graph = helper.make_graph([node], "g", [x], [y], initializer=[shape])
    path = tmp_path / "reshape.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10),
        str(path),
    )
    target = Target.here(load_profile(str(fast_profile)))
    with pytest.raises(InputError, match="ONNX Runtime cannot run reshape.onnx: .*Reshape"):
        target.measure_file(path)
