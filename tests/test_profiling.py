"""Profiling workers: a search's models measured into its target's study, each exactly once,
by real worker processes on the real servers; and the remote search that leaves them the work."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from test_cli import petri
from test_workers import finish, start_worker, wait_for_line, worker_args

from toolchain.store import SearchStudy
from toolchain.store import records as attr
from toolchain.store.targets import target_study_name


def profiler_args(url: str, profile: Path, *extra: str) -> list[str]:
    return [
        "profile", "--storage", url, "--study", "w", "--hw", str(profile), "--heartbeat", "1",
        *extra,
    ]  # fmt: skip


def measurements(url: str, profile_name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=target_study_name("w", profile_name), storage=url)
    return [t for t in study.trials if not t.user_attrs.get(attr.WITHDRAWN)]


def wait_until_measured(proc: subprocess.Popen[str], models: list[int], profile: str) -> None:
    """Read a profiler's lines until it has reported a latency for every one of ``models``."""
    assert proc.stderr is not None
    left = set(models)
    for line in proc.stderr:
        found = re.match(rf"model (\d+) on {profile}: \w+ [\d.]+ ms", line)
        left.discard(int(found.group(1)) if found else -1)
        if not left:
            return
    raise AssertionError(f"the profiler ended before measuring models {sorted(left)}")


def slow_profile(tmp_path: Path, fast_profile: Path) -> Path:
    """The fast profile with a 3 s timed region: long enough to be killed in."""
    profile = yaml.safe_load(fast_profile.read_text())
    profile["name"] = "cpu-ort-slow"
    profile["timing"] |= {"min_seconds": 3.0}
    path = tmp_path / "cpu-ort-slow.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_two_remote_searchers_and_a_profiler_on_postgres(
    postgres_url: str, fast_profile: Path, tmp_path: Path
) -> None:
    search = worker_args(postgres_url, fast_profile, 4, "--seeds", "8,16", "--measure", "remote")
    # The profiling worker comes first: it waits for the search it serves.
    profiler = start_worker(
        profiler_args(postgres_url, fast_profile, "--worker", "--poll", "1"), tmp_path
    )
    wait_for_line(profiler, "waiting for study 'w': for a search to create it")
    searchers = [start_worker(search, tmp_path) for _ in range(2)]
    for proc in searchers:
        finish(proc)
    study = SearchStudy.load(postgres_url, "w", tmp_path / "petri-artifacts")
    trained = sorted(r.trial for r in study.finished())
    assert len(trained) == 4 and all(r.latency_ms is None for r in study.finished())
    # The profiler goes on until it has measured the last model, then is stopped.
    wait_until_measured(profiler, trained, "cpu-ort-fast")
    profiler.send_signal(signal.SIGTERM)
    profiler.wait(timeout=60)
    done = [t for t in measurements(postgres_url, "cpu-ort-fast") if t.state == TrialState.COMPLETE]
    assert Counter(t.user_attrs[attr.SOURCE_TRIAL] for t in done) == dict.fromkeys(trained, 1)
    assert all(t.values[1] == t.user_attrs[attr.LATENCY_MS] > 0 for t in done)
    # The front and the pick read the target's study; a model keeps its number there.
    front = petri("front", "--storage", postgres_url, "--study", "w", "--json", cwd=tmp_path)
    assert front.returncode == 0, front.stderr
    assert sorted(row["trial"] for row in json.loads(front.stdout)) == trained


def test_refusals_leave_the_storage_and_a_killed_profiler_leaves_its_model_to_another(
    fast_profile: Path, tmp_path: Path
) -> None:
    db = tmp_path / "p.db"
    url = f"sqlite:///{db}"
    finish(start_worker(worker_args(url, fast_profile, 2, "--seeds", "8"), tmp_path))
    before = db.read_bytes()
    for hw, words in [(str(fast_profile), "by its own search"), ("trt-fp16", "GPU")]:
        run = petri(*profiler_args(url, Path(hw)), cwd=tmp_path)
        assert run.returncode == 2 and words in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1
    assert db.read_bytes() == before  # no target study was made

    slow = slow_profile(tmp_path, fast_profile)
    doomed = start_worker(profiler_args(url, slow), tmp_path)
    wait_for_line(doomed, "model 0 on cpu-ort-slow: measuring")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=60)
    other = start_worker(profiler_args(url, slow, "--worker", "--poll", "1"), tmp_path)
    wait_until_measured(other, [0, 1], "cpu-ort-slow")  # model 0 once it went stale
    other.send_signal(signal.SIGTERM)
    other.wait(timeout=60)
    by_model = Counter(
        (t.user_attrs[attr.SOURCE_TRIAL], t.state) for t in measurements(url, "cpu-ort-slow")
    )
    assert by_model == {
        (0, TrialState.FAIL): 1,
        (0, TrialState.COMPLETE): 1,
        (1, TrialState.COMPLETE): 1,
    }


def test_a_remote_search_needs_no_device_of_its_profile(tmp_path: Path) -> None:
    """trt-fp16 on a machine without a GPU: the search trains; latency waits for a worker."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    run = petri(
        *worker_args(url, Path("trt-fp16"), 1, "--seeds", "8", "--measure", "remote"), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "latency pending (remote)" in run.stderr
    pick = petri("pick", "--storage", url, "--study", "w", "--budget-ms", "5", cwd=tmp_path)
    assert pick.returncode == 2 and "has been measured on trt-fp16 yet" in pick.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "give an ONNX file or --study NAME"),
        (("m.onnx", "--study", "w"), "not both"),
        (("m.onnx", "--worker"), "--worker needs --study"),
        (("--study", "w", "--shape", "input:1x1x8x8"), "--shape is for an ONNX file"),
        (("--study", "nosuch"), "no storage at petri.db"),
        (("--study", "w", "--storage", "postgresql+psycopg2://u:pw@127.0.0.1:1/x"), "u:***@"),
    ],
)
def test_bad_profiling_requests_are_one_line(
    args: tuple[str, ...], words: str, tmp_path: Path
) -> None:
    run = petri("profile", *args, cwd=tmp_path)
    assert run.returncode == 2 and words in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "pw" not in run.stderr
    assert list(tmp_path.iterdir()) == []  # no storage file was made
