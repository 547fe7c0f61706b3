"""petri's TensorRT branching (version, precision, shapes, caching) without TensorRT.

FakeTensorRT stands in for the ``tensorrt`` module at the import boundary only; the ONNX
files, the fp16 conversion and ONNX Runtime's checks of it are real.
"""

from __future__ import annotations

import sys
from dataclasses import astuple
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fake_tensorrt import FakeTensorRT

from toolchain.arch.genotype import seed_genotype
from toolchain.arch.network import Network
from toolchain.bench import Target
from toolchain.bench.precision import check_precision, compare_outputs
from toolchain.bench.tensorrt.cache import EngineCache
from toolchain.bench.tensorrt.engine import EngineKey, build_engine, build_plan, optimisation_shapes
from toolchain.bench.tensorrt.fp16 import convert_to_fp16
from toolchain.bench.tensorrt.loader import load_tensorrt
from toolchain.errors import InputError
from toolchain.export.onnx import INPUT_NAME, export_onnx
from toolchain.hw import DeviceFacts, detect_gpus, load_profile

H200 = DeviceFacts(kind="cuda", name="NVIDIA H200", compute_capability="9.0", memory_gib=140.4)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    export_onnx(Network(seed_genotype(8, 2), 3, 10), (3, 32, 32), path, batch_size=1)
    return path


@pytest.mark.parametrize(("version", "major"), [("10.8.0.43", 10), ("11.2.1", 11)])
def test_supported_versions_load(monkeypatch: pytest.MonkeyPatch, version: str, major: int) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(version))
    assert load_tensorrt().__version__ == version


@pytest.mark.parametrize("version", ["8.6.1", "12.0.0", "nightly"])
def test_unsupported_versions_are_refused(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(version))
    with pytest.raises(InputError, match=f"TensorRT {version} is not supported; .*10 or 11"):
        load_tensorrt()


def test_missing_tensorrt_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # what `import` sees when not installed
    with pytest.raises(
        InputError,
        match=r"TensorRT is not installed; install it with `pip install -e '\.\[tensorrt\]'`",
    ):
        load_tensorrt()


@pytest.mark.parametrize(
    ("major", "precision", "strongly_typed", "fp16_flag", "converted"),
    [(10, "fp16", False, True, False), (10, "fp32", False, False, False),
     (11, "fp16", True, False, True), (11, "fp32", True, False, False)],
)  # fmt: skip
def test_build_plan_per_version_and_precision(
    major: int, precision: str, strongly_typed: bool, fp16_flag: bool, converted: bool
) -> None:
    assert astuple(build_plan(major, precision)) == (strongly_typed, fp16_flag, converted)


def test_tensorrt_10_sets_the_fp16_flag_on_the_original_graph(
    model_file: Path, tmp_path: Path
) -> None:
    trt = FakeTensorRT("10.8.0")
    profile = load_profile("trt-fp16")
    dims = {INPUT_NAME: ("batch", 3, 32, 32)}
    engine, cache = build_engine(
        trt, model_file, profile, dims, {INPUT_NAME: (4, 3, 32, 32)}, b"old", tmp_path
    )
    assert (engine, cache) == (b"engine", b"old+tuned")
    assert trt.called("create_network") == [0]
    assert trt.called("set_flag") == [FakeTensorRT.BuilderFlag.FP16]
    assert trt.called("parse") == [model_file.read_bytes()]
    assert trt.called("set_shape") == [(INPUT_NAME, (1, 3, 32, 32), (4, 3, 32, 32), (4, 3, 32, 32))]
    assert trt.called("timing_cache") == [b"old"]


def test_tensorrt_11_builds_a_strongly_typed_fp16_graph(model_file: Path, tmp_path: Path) -> None:
    trt = FakeTensorRT("11.2.1")
    build_engine(
        trt, model_file, load_profile("trt-fp16"), {INPUT_NAME: ("batch", 3, 32, 32)},
        {INPUT_NAME: (1, 3, 32, 32)}, b"", tmp_path,
    )  # fmt: skip
    assert trt.called("create_network") == [1 << 5] and trt.called("set_flag") == []
    (parsed,) = trt.called("parse")
    graph = onnx.load_from_string(parsed).graph
    assert {i.data_type for i in graph.initializer} >= {onnx.TensorProto.FLOAT16}
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fed as fp32


def test_fp32_on_tensorrt_11_keeps_the_graph(model_file: Path, tmp_path: Path) -> None:
    trt = FakeTensorRT("11.0.0")
    build_engine(
        trt, model_file, load_profile("trt-fp32"), {INPUT_NAME: (1, 3, 32, 32)},
        {INPUT_NAME: (1, 3, 32, 32)}, b"", tmp_path,
    )  # fmt: skip
    assert trt.called("parse") == [model_file.read_bytes()]
    assert trt.called("set_shape") == []  # no dynamic axis, no optimisation profile


def test_fp16_graph_agrees_with_fp32(model_file: Path, tmp_path: Path) -> None:
    half = convert_to_fp16(model_file, tmp_path / "h.onnx")
    images = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {INPUT_NAME: images})[0]

    result = compare_outputs(run(half), run(model_file))
    assert result["all_finite"] and result["passed"] and 0 < result["max_abs_diff"] < 1e-2
    broken = run(model_file).copy()
    broken[3, 0] = np.nan
    assert compare_outputs(broken, run(model_file))["passed"] is False


def test_optimisation_shapes_only_for_dynamic_inputs() -> None:
    dims = {"a": ("N", 3, "H", 8), "b": (1, 4)}
    assert optimisation_shapes(dims, {"a": (8, 3, 5, 8), "b": (1, 4)}) == {
        "a": ((1, 3, 5, 8), (8, 3, 5, 8), (8, 3, 5, 8))
    }


def test_engine_cache_returns_only_the_engine_of_the_same_key(
    model_file: Path, tmp_path: Path
) -> None:
    trt = FakeTensorRT("10.8.0")
    key = EngineKey.for_model(trt, model_file, "fp16", H200, {INPUT_NAME: (1, 3, 32, 32)})
    cache = EngineCache("trt-fp16", root=tmp_path)
    assert cache.engine(key) is None and cache.timing_cache() == b""
    cache.store(key, b"engine-bytes", b"timing")
    assert cache.engine(key) == b"engine-bytes" and cache.timing_cache() == b"timing"
    others = [
        EngineKey.for_model(
            FakeTensorRT("10.9.0"), model_file, "fp16", H200, {INPUT_NAME: (1, 3, 32, 32)}
        ),
        EngineKey.for_model(trt, model_file, "fp32", H200, {INPUT_NAME: (1, 3, 32, 32)}),
        EngineKey.for_model(trt, model_file, "fp16", H200, {INPUT_NAME: (2, 3, 32, 32)}),
        EngineKey.for_model(
            trt,
            model_file,
            "fp16",
            H200.model_copy(update={"compute_capability": "8.0"}),
            {INPUT_NAME: (1, 3, 32, 32)},
        ),
    ]
    assert len({k.id for k in others} | {key.id}) == 5
    assert all(cache.engine(k) is None for k in others)
    assert not list(cache.folder.glob("*.partial"))


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["trt-fp32", "trt-fp16"])
def test_real_engine_measures_and_matches_fp32(name: str, model_file: Path) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    if not detect_gpus():
        pytest.skip("no NVIDIA GPU on this machine")
    target = Target.here(load_profile(name), allow_other_device=True)
    record = target.measure_file(model_file)
    assert record.stats.n >= target.profile.timing.min_runs and record.stats.median > 0
    assert record.extra["engine_key"]["precision"] == target.profile.precision
    images = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    check = check_precision(target, model_file, images, INPUT_NAME)
    assert check is None if name == "trt-fp32" else check["passed"]
