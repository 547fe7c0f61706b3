from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from toolchain.arch.genotype import seed_genotype
from toolchain.errors import StorageError
from toolchain.store import SearchStudy
from toolchain.store.study import open_storage
from toolchain.store.urls import default_artifact_dir, masked

META = {
    "dataset": "digits",
    "subset": None,
    "image_size": None,
    "seed": 0,
    "preset": "smoke",
    "profile": {"name": "cpu-ort"},
}


def test_a_model_is_one_trial_with_attributes_constraint_and_artifacts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = SearchStudy.open_for_search(url, "s", META)
    g = seed_genotype(8, 2)
    trial = study.ask()
    study.claim(trial, parent=None, seed_width=8)
    study.set_architecture(trial, g, growth=None)
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"onnx bytes")
    study.set_attrs(trial, {"val_accuracy": 0.9, "latency_ms": 1.5})
    study.upload(trial, {"onnx": onnx_file})
    study.complete(trial, val_error=0.1, latency_ms=1.5, budget_ms=1.0)
    (frozen,) = study.study.trials
    assert frozen.values == [0.1, 1.5]
    assert frozen.system_attrs["constraints:latency_over_budget_ms"] == pytest.approx(0.5)

    reopened = SearchStudy.load(url, "s")  # a new connection sees the same model
    (rec,) = reopened.finished()
    assert (rec.trial, rec.genotype, rec.val_accuracy, rec.latency_ms) == (0, g, 0.9, 1.5)
    assert reopened.study.best_trials == []  # infeasible under the budget it was searched with
    out = tmp_path / "back.onnx"
    reopened.download(rec, "onnx", out)
    assert out.read_bytes() == b"onnx bytes"
    assert default_artifact_dir(url) == tmp_path / "p-artifacts"


def test_failed_model_keeps_its_reason(tmp_path: Path) -> None:
    study = SearchStudy.open_for_search(f"sqlite:///{tmp_path / 'p.db'}", "s", META)
    trial = study.ask()
    study.claim(trial, parent=None, seed_width=8)
    study.set_architecture(trial, seed_genotype(8, 2), growth=None)
    study.fail(trial, "loss became nan in epoch 2")
    (rec,) = study.records()
    assert rec.state == TrialState.FAIL and rec.fail_reason == "loss became nan in epoch 2"
    assert study.finished() == []


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    SearchStudy.open_for_search(url, "s", META)
    with pytest.raises(StorageError, match="searched with dataset 'digits'"):
        SearchStudy.open_for_search(url, "s", {**META, "dataset": "imagefolder:x"})


def test_missing_study_lists_the_ones_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    SearchStudy.open_for_search(url, "first", META)
    with pytest.raises(StorageError, match="available: first"):
        SearchStudy.load(url, "second")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////no/such/folder/p.db", "folder /no/such/folder does not exist"),
        ("not a url", "not a database URL"),
        ("postgresql://user:secret@127.0.0.1:1/db", "cannot open storage"),
    ],
)
def test_unopenable_storage_is_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as info:
        open_storage(url, must_exist=False)
    assert "secret" not in str(info.value) and "\n" not in str(info.value)


def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="run `petri search"):
        SearchStudy.load(f"sqlite:///{tmp_path / 'none.db'}", "s")
    assert not (tmp_path / "none.db").exists()


def test_urls_without_password_are_shown_as_they_are() -> None:
    assert masked("sqlite:///petri.db") == "sqlite:///petri.db"
    assert masked("mysql+pymysql://root@127.0.0.1/test") == "mysql+pymysql://root@127.0.0.1/test"


def test_a_sqlite_file_of_something_else_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "shop.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    before = other.read_bytes()
    for must_exist in (True, False):
        with pytest.raises(StorageError, match="is not an Optuna storage"):
            open_storage(f"sqlite:///{other}", must_exist=must_exist)
    assert other.read_bytes() == before


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:secret@db.example/petri",
        "postgresql://me:se@cret@db.example/petri",
        "postgresql://me@db.example/petri?password=secret",
        "postgresql://me:secret@db.example:notaport/petri",
        "mysql+pymysql://me:secret@db/petri?charset=utf8&password=secret",
        "postgresql://me:se/cret@db.example/petri",
        "postgresql://me:se?cret@db.example/petri",
        "postgresql://me@db.example/petri?sslpassword=secret",
        "sqlite:///nowhere/petri.db?password=secret",
    ],
)
def test_passwords_are_masked_in_every_url_form(url: str) -> None:
    assert "secret" not in masked(url) and "cret" not in masked(url)


def test_missing_artifacts_folder_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = SearchStudy.open_for_search(url, "s", META)
    trial = study.ask()
    study.claim(trial, parent=None, seed_width=8)
    study.set_architecture(trial, seed_genotype(8, 2), growth=None)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"w")
    study.upload(trial, {"weights": weights})
    study.complete(trial, val_error=0.1, latency_ms=1.0, budget_ms=2.0)
    (tmp_path / "p-artifacts").rename(tmp_path / "moved")
    with pytest.raises(StorageError, match="missing from"):
        study.download(study.finished()[0], "weights", tmp_path / "back.pt")
