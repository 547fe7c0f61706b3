"""Several workers on one study: claims, heartbeats, stale trials, late results, and the
storage kinds they share (SQLite, PostgreSQL, MariaDB), with real processes and servers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from test_cli import PETRI, petri

from toolchain.arch.genotype import seed_genotype
from toolchain.cli import GRACE_INTERVALS, HEARTBEAT_S
from toolchain.store import SearchStudy
from toolchain.store import heartbeat as hb
from toolchain.store import records as attr

META = {"dataset": "digits", "seed": 0, "preset": "smoke", "profile": {"name": "cpu-ort"}}


def test_cli_defaults_match_the_library() -> None:
    assert (HEARTBEAT_S, GRACE_INTERVALS) == (hb.DEFAULT_INTERVAL_S, hb.GRACE_INTERVALS)


# --- the storage contract, on every kind of storage -----------------------------------------


def test_claims_are_seen_in_trial_order(storage_url: str, tmp_path: Path) -> None:
    first = SearchStudy.open_for_search(storage_url, "s", META, artifacts=tmp_path)
    second = SearchStudy.open_for_search(storage_url, "s", META, artifacts=tmp_path)  # joins
    a, b = first.ask(), second.ask()
    assert (a.number, b.number) == (0, 1)
    assert second.numbers_before(b.number) == ({0}, False)  # a has not said what it trains
    assert first.records() == []  # asked trials are not models until claimed
    first.claim(a, parent=None, seed_width=8)
    assert second.numbers_before(b.number) == ({0}, True)
    second.withdraw(b)  # found nothing to do: bookkeeping, never a model
    (only,) = second.records()
    assert (only.trial, only.seed_width, only.state) == (0, 8, TrialState.RUNNING)


def test_a_failed_trial_drops_the_late_result(storage_url: str, tmp_path: Path) -> None:
    study = SearchStudy.open_for_search(storage_url, "s", META, artifacts=tmp_path)
    trial = study.ask()
    study.claim(trial, parent=None, seed_width=8)
    study.set_architecture(trial, seed_genotype(8, 2), growth=None)
    other_worker = SearchStudy.load(storage_url, "s", tmp_path)
    assert other_worker.fail_running() == [0]  # what `petri search --resume` does
    with pytest.raises(UpdateFinishedTrialError):
        study.complete(trial, val_error=0.1, latency_ms=1.0, budget_ms=2.0)
    assert study.fail(trial, "too late") is False
    (record,) = other_worker.records()
    assert record.state == TrialState.FAIL and record.fail_reason == attr.STALE_REASON


def test_the_time_limit_is_shared_by_the_study(storage_url: str, tmp_path: Path) -> None:
    study = SearchStudy.open_for_search(storage_url, "s", META, artifacts=tmp_path)
    deadline = study.shared_deadline(600.0)
    assert deadline is not None and 590 < deadline - time.time() <= 600
    joined = SearchStudy.load(storage_url, "s", tmp_path)
    assert joined.shared_deadline(60.0) == deadline  # a second worker keeps the first's


# --- workers as processes --------------------------------------------------------------------


def worker_args(url: str, profile: Path, max_models: int, *extra: str) -> list[str]:
    return [
        "search", "--dataset", "digits", "--hw", str(profile), "--budget-ms", "5",
        "--storage", url, "--study", "w", "--max-models", str(max_models),
        "--preset", "smoke", "--seed", "1", "--heartbeat", "1", *extra,
    ]  # fmt: skip


def start_worker(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PETRI, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a worker; its stderr. It must have exited cleanly."""
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return err


def wait_for_line(proc: subprocess.Popen[str], *words: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if all(word in line for word in words):
            return
    raise AssertionError(f"the worker ended without a line with {words}")


def test_two_workers_share_one_search_on_postgres(
    postgres_url: str, fast_profile: Path, tmp_path: Path
) -> None:
    args = worker_args(postgres_url, fast_profile, 4, "--seeds", "8,16", "--artifacts", "arts")
    workers = [start_worker(args, tmp_path) for _ in range(2)]
    for proc in workers:
        finish(proc)
    study = SearchStudy.load(postgres_url, "w", tmp_path / "arts")
    states = Counter(t.state for t in study.study.trials if not t.user_attrs.get("withdrawn"))
    assert states == {TrialState.COMPLETE: 4}  # exactly --max-models, none lost or doubled
    finished = study.finished()
    assert sorted(r.seed_width for r in finished if r.parent is None) == [8, 16]  # once each
    by_worker = Counter(t.user_attrs[attr.WORKER] for t in study.study.trials if t.values)
    assert len(by_worker) == 2, by_worker  # both took part
    assert all(study.artifact_dir == tmp_path / "arts" and r.artifacts for r in finished)


def test_a_killed_worker_is_replaced_after_its_grace_period(
    postgres_url: str, fast_profile: Path, tmp_path: Path
) -> None:
    args = worker_args(postgres_url, fast_profile, 3, "--seeds", "8")
    doomed = start_worker(args, tmp_path)
    wait_for_line(doomed, "trial 0", "epoch 1/")  # mid-training of the seed
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=60)
    survivor = finish(start_worker(args, tmp_path))
    assert "waiting for the models other workers are training (trials 0)" in survivor
    study = SearchStudy.load(postgres_url, "w", tmp_path / "petri-artifacts")
    records = study.records()
    assert records[0].state == TrialState.FAIL and records[0].fail_reason == attr.STALE_REASON
    assert len(study.finished()) == 3


def test_a_paused_worker_drops_its_late_result(fast_profile: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    args = worker_args(url, fast_profile, 2, "--seeds", "8")
    paused = start_worker(args, tmp_path)
    wait_for_line(paused, "trial 0", "epoch 1/")
    paused.send_signal(signal.SIGSTOP)  # no heartbeats: stale after the grace period
    try:
        finish(start_worker(args, tmp_path))  # takes trial 0's model over, finishes the study
    finally:
        paused.send_signal(signal.SIGCONT)
    late = finish(paused)
    assert "trial 0 was failed by another worker while it trained" in late
    assert "its result is dropped" in late
    study = SearchStudy.load(url, "w")
    assert [(r.trial, r.state.name) for r in study.records()][0] == (0, "FAIL")
    assert len(study.finished()) == 2


def test_four_processes_share_one_sqlite_file(fast_profile: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    args = worker_args(url, fast_profile, 4, "--seeds", "4,8")
    workers = [start_worker(args, tmp_path) for _ in range(4)]
    for err in map(finish, workers):
        assert "locked" not in err
    study = SearchStudy.load(url, "w")
    assert len(study.finished()) == 4
    assert not [r for r in study.records() if r.state == TrialState.RUNNING]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://petri:s3cret@127.0.0.1:1/petri",
        "mysql+pymysql://petri:s3cret@127.0.0.1:1/petri",
    ],
)
def test_an_unreachable_server_is_one_line_without_the_password(
    url: str, fast_profile: Path, tmp_path: Path
) -> None:
    run = petri(*worker_args(url, fast_profile, 2), cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("error: cannot open storage") and run.stderr.count("\n") == 1
    assert "s3cret" not in run.stderr and "petri:***@" in run.stderr
