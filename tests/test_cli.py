"""The command line end to end, as a user runs it: real processes, real storage, real data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain.store import SearchStudy

PETRI = str(Path(sys.executable).parent / "petri")


def petri(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PETRI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def on_study(
    db: Path, command: str, *args: str, study: str = "t"
) -> subprocess.CompletedProcess[str]:
    """A reporting command on study ``study`` of the SQLite file ``db``, run beside it."""
    return petri(command, "--storage", f"sqlite:///{db}", "--study", study, *args, cwd=db.parent)


def search_args(db: Path, profile: Path, max_models: int, *extra: str) -> list[str]:
    return [
        "search", "--dataset", "digits", "--hw", str(profile), "--budget-ms", "5",
        "--storage", f"sqlite:///{db}", "--study", "t", "--max-models", str(max_models),
        "--preset", "smoke", "--seed", "1", *extra,
    ]  # fmt: skip


def test_search_then_front_pick_export_and_resume(tmp_path: Path, fast_profile: Path) -> None:
    db = tmp_path / "p.db"
    run = petri(*search_args(db, fast_profile, 3, "--child-epochs", "3"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    study = SearchStudy.load(f"sqlite:///{db}", "t")
    finished = study.finished()
    epochs = [t.user_attrs["epochs"] for t in study.study.trials]
    assert epochs == [2, 3, 3]  # smoke trains a seed for 2 epochs; the override gives children 3
    assert len(finished) == 3 and finished[0].parent is None
    assert all(r.parent is not None for r in finished[1:])
    attrs = study.study.trials[1].user_attrs
    phases = {"growth", "train", "export", "parity", "measure", "store"}
    assert set(attrs["phase_seconds"]) == phases  # a child; the seed has no growth phase
    assert set(study.study.trials[0].user_attrs["phase_seconds"]) == phases - {"growth"}
    assert attrs["growth"]["rule"] == "petridish" and attrs["growth"]["kept"]
    assert attrs["parity"]["passed"] and attrs["parity"]["batch_size"] != 1
    assert attrs["latency"]["stats"]["n"] >= 30 and attrs["latency"]["profile"] == "cpu-ort-fast"

    front = json.loads(on_study(db, "front", "--json").stdout)
    assert [row["trial"] for row in front] == sorted(
        (r.trial for r in finished), key=lambda t: finished[t].latency_ms
    )
    assert any(row["front"] for row in front)

    picked = on_study(db, "pick", "--budget-ms", "5", "--json")
    summary = json.loads(picked.stdout)
    best = max(finished, key=lambda r: r.val_accuracy)
    assert summary["val_accuracy"] == best.val_accuracy and summary["budget_ms"] == 5.0
    assert {"trial", "latency_ms", "test_accuracy", "params"} <= set(summary)

    exported = on_study(db, "export", "--budget-ms", "5", "--out", "deploy")
    assert exported.returncode == 0, exported.stderr
    meta = json.loads((tmp_path / "deploy" / "metadata.json").read_text())
    assert meta["model"]["trial"] == summary["trial"] and meta["input"]["shape"][1:] == [1, 8, 8]
    assert meta["classes"] == [str(d) for d in range(10)]
    check = petri("verify", "deploy", "--latency-tolerance", "5", cwd=tmp_path)
    assert check.returncode == 0 and "difference 0.00 points" in check.stdout, check.stderr

    # Resume with one more model and a new budget (the last --budget-ms wins); not another lr.
    other_lr = petri(
        *search_args(db, fast_profile, 4, "--child-epochs", "3", "--lr", "0.01"), cwd=tmp_path
    )
    assert (
        other_lr.returncode == 2
        and "was searched with training.lr 0.05, not 0.01" in other_lr.stderr
    )
    again = petri(
        *search_args(db, fast_profile, 4, "--child-epochs", "3", "--budget-ms", "6"), cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "budget changed from 5 ms to 6 ms" in again.stderr
    assert SearchStudy.load(f"sqlite:///{db}", "t").meta["budget_ms"] == 6.0
    after = SearchStudy.load(f"sqlite:///{db}", "t").finished()
    assert len(after) == 4 and after[3].trial > 2  # one new model, the first three untouched
    assert [r.latency for r in after[:3]] == [r.latency for r in finished]


def test_same_seed_same_architectures(tmp_path: Path, fast_profile: Path) -> None:
    ids = []
    for name in ("a.db", "b.db"):
        assert petri(*search_args(tmp_path / name, fast_profile, 2), cwd=tmp_path).returncode == 0
        ids.append(
            [r.arch_id for r in SearchStudy.load(f"sqlite:///{tmp_path / name}", "t").finished()]
        )
    assert ids[0] == ids[1] and len(set(ids[0])) == 2  # the seed, and the child grown from it


def test_ctrl_c_keeps_the_storage_and_the_rerun_goes_on(tmp_path: Path, fast_profile: Path) -> None:
    db = tmp_path / "p.db"
    proc = subprocess.Popen(
        [PETRI, *search_args(db, fast_profile, 3)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        # As at a terminal: a shell without job control starts background jobs (a CI runner's
        # children among them) with SIGINT ignored, and Ctrl-C would never arrive.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait for the first finished model, then for the next to start
        if "training" in line and "trial 1" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command" in rest
    records = SearchStudy.load(f"sqlite:///{db}", "t").records()
    assert [(r.trial, r.state.name) for r in records] == [(0, "COMPLETE"), (1, "FAIL")]
    assert "interrupted" in (records[1].fail_reason or "")

    rerun = petri(*search_args(db, fast_profile, 2), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    finished = SearchStudy.load(f"sqlite:///{db}", "t").finished()
    assert [r.trial for r in finished] == [0, 2]  # the seed was not trained again


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--dataset": "imagefolder:/no/such/data"}, "does not exist"),
        ({"--dataset": "EMPTY"}, "holds no images"),
        ({"--dataset": "BROKEN"}, "is not a readable image"),
        ({"--hw": "BAD_PROFILE"}, "field 'threads'"),
        ({"--storage": "sqlite:////no/such/folder/p.db"}, "does not exist"),
        ({"--budget-ms": "-1"}, "--budget-ms"),
        ({"--budget-ms": "nan"}, "--budget-ms"),
        ({"--lr": "nan"}, "'nan' is not a finite number"),
        ({"--eps": "inf"}, "'inf' is not a finite number"),
        ({"--time-limit": "nan"}, "'nan' is not a finite number"),
        ({"--seed-epochs": "0"}, "--seed-epochs"),
        ({"--strategy": "bogus"}, "'bogus' is not one of 'forward', 'random', 'nsga2'"),
    ],
    ids=[
        "missing-data",
        "empty-class",
        "broken-image",
        "bad-profile",
        "bad-storage",
        "negative-budget",
        "nan-budget",
        "nan-lr",
        "inf-eps",
        "nan-time-limit",
        "zero-seed-epochs",
        "unknown-strategy",
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, fast_profile: Path, change: dict[str, str], message: str
) -> None:
    args = search_args(tmp_path / "p.db", fast_profile, 1)
    ((key, value),) = change.items()
    if value == "EMPTY":
        (tmp_path / "imgs" / "train" / "a").mkdir(parents=True)
        (tmp_path / "imgs" / "train" / "b").mkdir(parents=True)
        value = f"imagefolder:{tmp_path / 'imgs'}"
    elif value == "BROKEN":
        for cls in ("a", "b"):
            (tmp_path / "imgs" / "train" / cls).mkdir(parents=True)
            for i in range(10):
                (tmp_path / "imgs" / "train" / cls / f"{i}.png").write_bytes(b"\x89PNG not really")
        value = f"imagefolder:{tmp_path / 'imgs'}"
    elif value == "BAD_PROFILE":
        bad = tmp_path / "bad.yaml"
        bad.write_text(fast_profile.read_text().replace("threads: 1", "threads: -3"))
        value = str(bad)
    if key in args:
        args[args.index(key) + 1] = value
    else:
        args += [key, value]
    run = petri(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    error_lines = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and message in error_lines[0], run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "p.db").exists()


def test_pick_with_nothing_under_budget_exits_3(tmp_path: Path, fast_profile: Path) -> None:
    db = tmp_path / "p.db"
    assert petri(*search_args(db, fast_profile, 1), cwd=tmp_path).returncode == 0
    rows = json.loads(
        petri("studies", "--storage", f"sqlite:///{db}", "--json", cwd=tmp_path).stdout
    )
    assert [(r["study"], r["finished"], r["profile"]) for r in rows] == [("t", 1, "cpu-ort-fast")]
    run = on_study(db, "pick", "--budget-ms", "0.0001")
    assert run.returncode == 3
    assert run.stderr.startswith("error: no model meets 0.0001 ms; closest: trial 0 at")
    as_json = on_study(db, "pick", "--budget-ms", "0.0001", "--json")
    assert as_json.returncode == 3
    report = json.loads(as_json.stdout)
    assert report["fits"] is False and [m["trial"] for m in report["closest"]] == [0]
    missing = on_study(db, "pick", "--budget-ms", "1", study="nope")
    assert missing.returncode == 2 and "available: t" in missing.stderr


def test_several_seeds_then_diverging_candidates_fail_trials_not_the_search(
    tmp_path: Path, fast_profile: Path
) -> None:
    db = tmp_path / "p.db"
    # An L1 weight this large makes omega, then the loss, blow up in the candidate phase.
    run = petri(*search_args(db, fast_profile, 3, "--seeds", "4,8", "--l1", "1e308"), cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: the last 5 models failed")
    records = SearchStudy.load(f"sqlite:///{db}", "t").records()
    seeds = [r for r in records if r.finished]
    assert [r.architecture.channels for r in seeds] == [4, 8] and all(
        r.parent is None for r in seeds
    )
    failed = [r for r in records if not r.finished]
    assert len(failed) == 5 and all(r.parent in (0, 1) for r in failed)
    assert all("candidate phase loss became" in (r.fail_reason or "") for r in failed)


def test_fewer_models_than_seeds_is_bad_usage(tmp_path: Path, fast_profile: Path) -> None:
    run = petri(*search_args(tmp_path / "p.db", fast_profile, 1, "--seeds", "4,8"), cwd=tmp_path)
    assert run.returncode == 2 and "--max-models 1 is smaller than the 2 seed models" in run.stderr
    assert not (tmp_path / "p.db").exists()


def test_cell_mode_search_runs_through_export_and_pick(tmp_path: Path, fast_profile: Path) -> None:
    db = tmp_path / "p.db"
    run = petri(*search_args(db, fast_profile, 2, "--mode", "cell"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    finished = SearchStudy.load(f"sqlite:///{db}", "t").finished()
    for record in finished:
        genotype = record.architecture
        assert genotype.mode == "cell"
        for kind in (False, True):  # every cell of a type still repeats its template
            assert len({c.nodes for c in genotype.cells if c.reduction == kind}) == 1
    assert on_study(db, "pick", "--budget-ms", "5").returncode == 0
    exported = on_study(db, "export", "--budget-ms", "5", "--out", "bundle")
    assert exported.returncode == 0, exported.stderr
    assert (
        json.loads((tmp_path / "bundle" / "metadata.json").read_text())["model"]["genotype"]["mode"]
        == "cell"
    )
    bad = petri(*search_args(tmp_path / "q.db", fast_profile, 1, "--mode", "nested"), cwd=tmp_path)
    assert bad.returncode == 2 and "--mode" in bad.stderr
