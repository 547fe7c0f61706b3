"""scripts/bench_search.py end to end on digits: every arm, its table, results and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from toolchain.pareto import hypervolume
from toolchain.store import SearchStudy

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_search.py"


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.slow
def test_every_arm_runs_and_is_reported(tmp_path: Path, fast_profile: Path) -> None:
    run = bench(
        "--dataset", "digits", "--subset", "1000", "--hw", str(fast_profile), "--budget-ms", "1",
        "--minutes", "0.05", "--preset", "smoke", "--seed-epochs", "2", "--child-epochs", "1",
        "--out", "b", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    arms = json.loads((tmp_path / "b" / "results.json").read_text())["arms"]
    assert [a["arm"] for a in arms] == ["petridish", "random-growth", "random-arch", "nsga2"]
    rules = {"petridish": "petridish", "random-growth": "random", "random-arch": "scratch"}
    for arm in arms:
        study = SearchStudy.load(f"sqlite:///{tmp_path / 'b' / 'bench.db'}", arm["arm"])
        finished = study.finished()
        # Which models finish inside the (tiny) wall time depends on the machine's load; what
        # is counted must be consistent with the storage either way.
        assert finished and arm["models"] == len(arm["points"]) <= len(finished)
        assert {(r.latency_ms, r.val_error) for r in finished} >= set(map(tuple, arm["points"]))
        children = [r.growth for r in finished if r.growth]
        assert all(g["rule"] == rules.get(arm["arm"], "scratch") for g in children)
        points = [(err, lat) for lat, err in arm["points"]]
        assert arm["hypervolume"] == pytest.approx(hypervolume(points, (1.0, 1.0)))
        assert (arm["best_val"] is None) == (not arm["points"])
    scratch = SearchStudy.load(f"sqlite:///{tmp_path / 'b' / 'bench.db'}", "nsga2").finished()
    assert all(r.growth and r.growth["sampler"] == "NSGAIISampler" for r in scratch)
    table = run.stdout.strip().splitlines()
    assert len(table) == 2 + 4 and table[2].startswith("| petridish |")
    with Image.open(tmp_path / "b" / "fronts.png") as png:
        assert png.size == (840, 540)

    again = bench("--dataset", "digits", "--out", "b", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    unknown = bench("--arms", "petridish,bogus", "--out", "c", cwd=tmp_path)
    assert unknown.returncode == 2 and "available: petridish" in unknown.stderr
    assert not (tmp_path / "c").exists()
