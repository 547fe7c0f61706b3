"""On a GPU machine with TensorRT: petri's TensorRT timing against trtexec, and fp16 checked.

For the ten models of scripts/latency_models.py and one TensorRT profile (default trt-fp16):
  * `petri profile` (engine built by petri, CUDA events around execute_async_v3), against
    trtexec on the same ONNX file with matching flags (shapes, precision, warm-up, duration,
    iterations, CUDA graph, no data transfers): the ratio of the GPU compute medians, target
    within 5% of 1;
  * for fp16 profiles, the engine's outputs against ONNX Runtime fp32 on the CPU: finite,
    top-1 agreement, largest difference.

    python scripts/gpu_check.py                       # trt-fp16, trtexec from PATH
    python scripts/gpu_check.py --hw trt-fp32 --trtexec /usr/src/tensorrt/bin/trtexec
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import click
import numpy as np
from latency_models import INPUT_SHAPE, make_models

from toolchain.bench import Target
from toolchain.bench.precision import check_precision
from toolchain.bench.tensorrt.engine import build_plan, graph_to_build
from toolchain.bench.tensorrt.loader import load_tensorrt, major_version
from toolchain.errors import PetriError
from toolchain.export.onnx import INPUT_NAME
from toolchain.hw import HardwareProfile, load_profile

GPU_COMPUTE = re.compile(r"GPU Compute Time: .*?median = ([0-9.]+) ms")


def trtexec_median(trtexec: str, model: Path, profile: HardwareProfile, workdir: Path) -> float:
    """trtexec with the flags that match petri's profile; its GPU compute median, in ms."""
    plan = build_plan(major_version(load_tensorrt()), profile.precision)
    source = graph_to_build(plan, model, workdir)
    t = profile.timing
    shape = "x".join(map(str, (profile.batch_size, *INPUT_SHAPE)))
    flags = [
        f"--onnx={source}",
        f"--shapes={INPUT_NAME}:{shape}",
        f"--warmUp={int(t.warmup_seconds * 1000)}",
        f"--duration={max(1, round(t.min_seconds))}",
        f"--iterations={t.min_runs}",
        f"--builderOptimizationLevel={profile.builder_optimization_level}",
        "--noDataTransfers",
        *(["--fp16"] if plan.fp16_flag else []),
        *(["--stronglyTyped"] if plan.strongly_typed else []),
        *(["--useCudaGraph"] if profile.cuda_graph else []),
    ]
    run = subprocess.run([trtexec, *flags], capture_output=True, text=True)
    found = GPU_COMPUTE.search(run.stdout)
    if run.returncode != 0 or not found:
        raise SystemExit(f"trtexec failed on {model.name}: {run.stdout[-500:]}{run.stderr[-500:]}")
    return float(found.group(1))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--hw", default="trt-fp16", show_default=True, help="A TensorRT profile.")
@click.option("--trtexec", default="trtexec", show_default=True, help="trtexec's path.")
def main(hw: str, trtexec: str) -> None:
    try:
        target = Target.here(load_profile(hw), allow_other_device=True)
    except PetriError as exc:
        raise click.UsageError(str(exc)) from exc
    if target.profile.backend != "tensorrt":
        raise click.UsageError(f"{hw} is not a TensorRT profile")
    if shutil.which(trtexec) is None:
        raise click.UsageError(f"{trtexec} not found; give --trtexec PATH")
    click.echo(f"{target.device.name}, TensorRT {load_tensorrt().__version__}, profile {hw}")
    rows = [
        "| model | petri median ms | trtexec median ms | ratio | fp16 top-1 agreement |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    images = np.random.default_rng(0).standard_normal((64, *INPUT_SHAPE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, _ in make_models(Path(tmp)):
            ours = target.measure_file(path).stats.median
            theirs = trtexec_median(trtexec, path, target.profile, Path(tmp))
            check = check_precision(target, path, images, INPUT_NAME)
            agreement = "fp32" if check is None else f"{check['top1_agreement']:.1%}"
            rows.append(
                f"| {name} | {ours:.4f} | {theirs:.4f} | {ours / theirs:.3f} | {agreement} |"
            )
            click.echo(rows[-1], err=True)
    click.echo("\n".join(rows))


if __name__ == "__main__":
    main()
