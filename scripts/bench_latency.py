"""`petri profile` against a bare ONNX Runtime loop, and its spread across fresh processes.

For ten models of the search space (scripts/latency_models.py):
  * the median `petri profile --json` reports (the middle one over the processes) against
    a loop written here from ONNX Runtime's API alone with the same settings (session
    options, warm-up, timed region): the target is a ratio within 5% of 1;
  * the spread of that median over --processes fresh `petri profile` processes:
    (max - min) / median, target under 5%.
Prints a Markdown table; run it on an otherwise idle machine.

    python scripts/bench_latency.py                 # cpu-ort, 5 processes: about 6 minutes
    python scripts/bench_latency.py --hw my-cpu.yaml --processes 3
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from latency_models import make_models

from toolchain.export.onnx import INPUT_NAME
from toolchain.hw import load_profile

PETRI = str(Path(sys.executable).parent / "petri")


def petri_median(model: Path, hw: str) -> float:
    run = subprocess.run(
        [PETRI, "profile", str(model), "--hw", hw, "--json"], capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"petri profile failed on {model.name}: {run.stderr.strip()}")
    return float(json.loads(run.stdout)["stats"]["median"])


def bare_median(model: Path, hw: str) -> float:
    """The reference: ONNX Runtime's API and time.perf_counter, nothing of petri's timing.

    Written out here on purpose (not petri's session_options or time_runs), so that a bug
    shared by both cannot hide.
    """
    import onnxruntime as ort

    profile = load_profile(hw)
    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = profile.threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if profile.allow_spinning else "0"
    )
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: np.random.default_rng(0).standard_normal((1, 3, 32, 32), np.float32)}
    t = profile.timing
    start, count = time.perf_counter(), 0
    while count < t.warmup_runs or time.perf_counter() - start < t.warmup_seconds:
        session.run(None, feed)
        count += 1
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < t.min_runs or time.perf_counter() - start < t.min_seconds:
        t0 = time.perf_counter()
        session.run(None, feed)
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--hw", default="cpu-ort", show_default=True, help="A CPU profile.")
@click.option("--processes", type=click.IntRange(min=2), default=5, show_default=True)
def main(hw: str, processes: int) -> None:
    profile = load_profile(hw)
    if profile.device != "cpu":
        raise click.UsageError(f"{hw} is not a CPU profile; GPUs are scripts/gpu_check.py's")
    rows = [
        "| model | params | petri median ms | bare ORT median ms | ratio | spread over "
        f"{processes} processes |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, params in make_models(Path(tmp)):
            medians = [petri_median(path, hw) for _ in range(processes)]
            bare = bare_median(path, hw)
            middle = statistics.median(medians)
            spread = (max(medians) - min(medians)) / middle
            rows.append(
                f"| {name} | {params:,} | {middle:.4f} | {bare:.4f} | "
                f"{middle / bare:.3f} | {spread:.1%} |"
            )
            click.echo(rows[-1], err=True)
    click.echo("\n".join(rows))


if __name__ == "__main__":
    main()
