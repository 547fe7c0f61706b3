from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from toolchain.errors import InputError
from toolchain.hw import (
    cpu_model,
    detect_gpus,
    environment_fingerprint,
    list_profiles,
    load_profile,
    target_device,
)
from toolchain.hw.device import parse_gpu_line, profile_for_this_machine

REPO = Path(__file__).resolve().parent.parent


def test_cpu_ort_profile_loads_by_name() -> None:
    profile = load_profile("cpu-ort")
    assert (profile.backend, profile.device, profile.precision) == ("onnxruntime", "cpu", "fp32")
    assert profile.batch_size == 1
    assert profile.budget_statistic == "median"
    assert profile.timing.min_runs >= 10
    assert "cpu-ort" in list_profiles()


def _write(tmp_path: Path, changes: dict) -> Path:
    data = yaml.safe_load((REPO / "hwprofiles" / "cpu-ort.yaml").read_text())
    data.update(changes)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"batch_sise": 4}, "batch_sise"),
        ({"batch_size": 0}, "batch_size"),
        ({"threads": "many"}, "threads"),
        ({"budget_statistic": "p50"}, "budget_statistic"),
        ({"timing": {"min_runs": 100, "min_secs": 1}}, "timing.min_secs"),
        ({"providers": []}, "providers"),
        ({"threads": 100_000}, "threads"),
        ({"expect_device": " "}, "expect_device"),
        ({"name": "../elsewhere"}, "name"),
    ],
)
def test_bad_profile_names_file_and_field(tmp_path: Path, changes: dict, field: str) -> None:
    path = _write(tmp_path, changes)
    with pytest.raises(InputError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert str(path) in message and repr(field) in message
    assert "\n" not in message and info.value.exit_code == 2


def test_profile_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="must be a mapping"):
        load_profile(str(path))


def test_unknown_profile_name_lists_available() -> None:
    with pytest.raises(InputError, match="available: .*cpu-ort"):
        load_profile("no-such-target")


def test_fingerprint_names_cpu_and_runtime_versions() -> None:
    import onnxruntime

    fp = environment_fingerprint()
    assert fp["onnxruntime"] == onnxruntime.__version__
    assert isinstance(fp["cpu"], str) and fp["cpu"]
    assert int(fp["cpu_count"]) >= 1


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        ({"warmup_seconds": float("inf")}, "timing.warmup_seconds"),
        ({"min_seconds": 1e9}, "timing.min_seconds"),
        ({"min_runs": 500, "max_runs": 100}, "max_runs (100) is below min_runs (500)"),
    ],
)
def test_timing_that_could_never_finish_is_refused(
    tmp_path: Path, timing: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_profile(str(_write(tmp_path, {"timing": timing})))


def test_binary_file_and_folder_are_not_profiles(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(InputError, match="not a valid YAML text file"):
        load_profile(str(binary))
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        load_profile(str(tmp_path / "dir.yaml"))


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "hwprofiles").glob("*.yaml")))
def test_every_bundled_profile_is_valid_and_consistent(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    if profile.backend == "tensorrt" or profile.precision == "fp16":
        assert profile.device == "cuda"
    assert (profile.device == "cpu") == (profile.execution_providers == ("CPUExecutionProvider",))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "tensorrt"}, "backend tensorrt needs device: cuda"),
        ({"precision": "fp16"}, "device cpu measures fp32 only"),
        ({"providers": ["CUDAExecutionProvider"]}, "device cpu takes providers"),
        ({"device": "cuda", "providers": ["CPUExecutionProvider"]}, "needs a first provider"),
        ({"device": "cuda", "precision": "fp16"}, "fp16 with onnxruntime needs Tensorrt"),
        ({"cuda_graph": True}, "cuda_graph applies to backend tensorrt only"),
        (
            {"device": "cuda", "backend": "tensorrt", "providers": ["CUDAExecutionProvider"]},
            "remove them for backend tensorrt",
        ),
    ],
)
def test_combinations_no_backend_can_measure_are_refused(
    tmp_path: Path, changes: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        load_profile(str(_write(tmp_path, changes)))
    assert "\n" not in str(info.value) and "Value error" not in str(info.value)


def test_nvidia_smi_line_is_parsed() -> None:
    gpu = parse_gpu_line("NVIDIA H200, 9.0, 143771, 570.86.15")
    assert (gpu.name, gpu.compute_capability, gpu.driver) == ("NVIDIA H200", "9.0", "570.86.15")
    assert gpu.memory_gib == pytest.approx(140.4)


def test_a_profile_for_another_device_is_refused_unless_allowed(tmp_path: Path) -> None:
    here = cpu_model()
    other = load_profile(str(_write(tmp_path, {"expect_device": "Apple M9"})))
    with pytest.raises(InputError, match=f"is for a 'Apple M9'.*{re.escape(repr(here))}"):
        target_device(other)
    assert target_device(other, allow_other_device=True).name == here
    mine = load_profile(str(_write(tmp_path, {"expect_device": here[:5].lower()})))
    assert target_device(mine).kind == "cpu"


def test_detected_profile_describes_this_machine() -> None:
    profile = profile_for_this_machine()
    assert profile.detected is not None and profile.expect_device == profile.detected.name
    if not detect_gpus():
        assert profile.device == "cpu" and profile.detected.cores == os.cpu_count()
