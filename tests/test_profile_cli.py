"""`petri profile` and `petri hw detect` as a user runs them, good input and bad."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from test_cli import petri
from test_inputs import relu_model

from toolchain.arch.genotype import seed_genotype
from toolchain.arch.network import Network
from toolchain.export.onnx import INPUT_NAME, export_onnx
from toolchain.hw import detect_gpus


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "m.onnx"
    export_onnx(Network(seed_genotype(8, 2), 3, 10), (3, 32, 32), path, batch_size=1)
    return path


def test_profile_measures_any_onnx_file(model: Path, fast_profile: Path, tmp_path: Path) -> None:
    run = petri("profile", str(model), "--hw", str(fast_profile), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("m.onnx on cpu-ort-fast: onnxruntime, cpu") and "p99" in run.stdout
    as_json = petri(
        "profile", str(model), "--hw", str(fast_profile), "--shape", f"{INPUT_NAME}:3x3x32x32",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    record = json.loads(as_json.stdout)
    assert record["input_shapes"] == {INPUT_NAME: [3, 3, 32, 32]}
    assert record["stats"]["n"] >= 30 and record["timing"]["min_runs"] == 30
    assert record["latency_ms"] == record["stats"]["median"] > 0


def bad_cases(tmp_path: Path, model: Path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "notes.onnx").write_text("not a model")
    dynamic = relu_model(tmp_path / "dyn.onnx", ["N", 3, "H", 8])
    custom = relu_model(tmp_path / "op.onnx", [1, 3, 4, 4], op="Frobnicate", domain="com.example")
    cases = {
        "missing": ([str(tmp_path / "nope.onnx")], "nope.onnx does not exist"),
        "not onnx": ([str(tmp_path / "notes.onnx")], "is not an ONNX model"),
        "unknown input": ([str(model), "--shape", "pixels:1x3x32x32"], "names no input 'pixels'"),
        "bad shape": ([str(model), "--shape", "input:1xthree"], "must look like NAME:1x3x32x32"),
        "dynamic dim": ([str(dynamic)], "input 'x' has a dynamic dimension"),
        "op it cannot run": ([str(custom)], "ONNX Runtime cannot run op.onnx"),
    }
    # Without a GPU that is said first; with one but without TensorRT, how to install it.
    if not detect_gpus():
        for profile in ("cuda-ort", "trt-fp16", "t4-trt-fp16"):
            cases[profile] = ([str(model), "--hw", profile], "this machine has none")
    elif importlib.util.find_spec("tensorrt") is None:
        cases["trt-fp16"] = ([str(model), "--hw", "trt-fp16"], "pip install -e '.[tensorrt]'")
    return cases


def test_bad_input_is_one_line_and_exit_2(model: Path, tmp_path: Path) -> None:
    for name, (args, message) in bad_cases(tmp_path, model).items():
        before = sorted(tmp_path.iterdir())
        run = petri("profile", *args, cwd=tmp_path)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, (name, run.stderr)
        assert lines[0].startswith("error: ") and message in lines[0], (name, lines[0])
        assert sorted(tmp_path.iterdir()) == before, name


def test_detect_writes_a_profile_for_this_machine(tmp_path: Path) -> None:
    shown = petri("hw", "detect", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    profile = yaml.safe_load(shown.stdout)
    assert profile["expect_device"] == profile["detected"]["name"]
    written = petri("hw", "detect", "--out", "mine.yaml", cwd=tmp_path)
    assert written.returncode == 0 and (tmp_path / "mine.yaml").is_file()
    assert petri("hw", "validate", "mine.yaml", cwd=tmp_path).returncode == 0
    again = petri("hw", "detect", "--out", "mine.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
