"""Opening storages and studies, and writing one model as one trial (ask ... tell).

One multi-objective study per search: minimise (validation error, latency in ms on the
search's profile). Feasibility under the budget is stored as an Optuna constraint
(``Trial.set_constraint``), so Optuna's own tools (best trials, plots, the dashboard) see it.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, Trial, TrialState

from toolchain.arch.genotype import Genotype
from toolchain.errors import StorageError
from toolchain.store import records as attr
from toolchain.store.records import ModelRecord
from toolchain.store.urls import default_artifact_dir, masked, sqlite_path

META_KEY = "petri"
# What a resumed search must share with the study (the data's shape included: a folder that
# gained a class or images would silently change the models).
RESUME_KEYS = (
    "strategy",
    "mode",
    "growth",
    "seeds",
    "dataset",
    "subset",
    "image_size",
    "seed",
    "preset",
    "training",
    "profile",
    "classes",
    "input_shape",
    "split_sizes",
)
SQLITE_TIMEOUT_S = 60  # several local processes may share one SQLite file


def open_storage(url: str, *, must_exist: bool) -> optuna.storages.RDBStorage:
    """Open an Optuna RDB storage; ``must_exist`` for commands that only read.

    A SQLite file that holds something other than an Optuna storage is refused before Optuna
    would add its tables to it.
    """
    db = sqlite_path(url)
    engine_kwargs: dict[str, Any] = {}
    if db is not None:
        if must_exist and not db.is_file():
            raise StorageError(f"no storage at {db}; run `petri search --storage {url}` first")
        if not db.parent.is_dir():
            raise StorageError(f"cannot open storage {url}: folder {db.parent} does not exist")
        _check_sqlite_file(db, must_exist)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # SQLAlchemy/driver errors differ by database; all mean "cannot open"
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise StorageError(f"cannot open storage {masked(url)}: {masked(reason)}") from exc


def _check_sqlite_file(db: Path, must_exist: bool) -> None:
    if db.is_dir():
        raise StorageError(f"storage {db} is a folder; give a file, e.g. sqlite:///{db}/petri.db")
    if not db.exists() or (db.stat().st_size == 0 and not must_exist):
        return  # a new storage
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"{db} is not a SQLite database ({exc}); choose another --storage"
        ) from exc
    if "studies" not in tables or "trials" not in tables:
        raise StorageError(f"{db} is not an Optuna storage; choose another --storage")


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    )


class SearchStudy:
    """A search's study: its metadata, its models, and their artifacts."""

    def __init__(self, study: optuna.Study, artifact_dir: Path) -> None:
        self.study = study
        self.artifact_dir = artifact_dir
        self.artifacts = FileSystemArtifactStore(str(artifact_dir))

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def meta(self) -> dict[str, Any]:
        return self.study.user_attrs[META_KEY]

    @staticmethod
    def _check_made_by_petri(study: optuna.Study) -> None:
        if META_KEY not in study.user_attrs:
            raise StorageError(f"study {study.study_name!r} was not made by petri search")

    @classmethod
    def load(cls, url: str, name: str) -> SearchStudy:
        storage = open_storage(url, must_exist=True)
        names = study_names(storage)
        if name not in names:
            raise StorageError(
                f"no study {name!r} in {masked(url)}; available: {', '.join(names) or 'none'}"
            )
        study = optuna.load_study(study_name=name, storage=storage)
        cls._check_made_by_petri(study)
        return cls(study, default_artifact_dir(url))

    @classmethod
    def open_for_search(cls, url: str, name: str, meta: dict[str, Any]) -> SearchStudy:
        """Create the study, or reopen it when ``meta`` matches what it was created with."""
        storage = open_storage(url, must_exist=False)
        if name in study_names(storage):
            found = cls.load(url, name)
            found.check_same_search(meta)
            return found
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=["minimize", "minimize"],
        )
        with warnings.catch_warnings():  # experimental in Optuna, stable enough for a label
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["val_error", "latency_ms"])
        study.set_user_attr(META_KEY, meta)
        return cls(study, default_artifact_dir(url))

    def update_budget(self, budget_ms: float) -> float | None:
        """Record a new budget for a resumed search; return the old one if it changed.

        Models told earlier keep the Optuna constraint of the budget they were searched with.
        """
        previous = self.meta.get("budget_ms")
        if previous == budget_ms:
            return None
        self.study.set_user_attr(META_KEY, {**self.meta, "budget_ms": budget_ms})
        return previous

    def check_same_search(self, meta: dict[str, Any]) -> None:
        """Refuse to resume when anything the models depend on differs (the budget may)."""
        differences = _differences(self.meta, meta, RESUME_KEYS)
        if differences:
            listed = "; ".join(f"{key} {was}, not {now}" for key, was, now in differences)
            raise StorageError(
                f"study {self.name!r} was searched with {listed}; resume with the same "
                "settings and data, or choose a new --study"
            )

    # --- reading -------------------------------------------------------------------------

    def records(self, states: tuple[TrialState, ...] | None = None) -> list[ModelRecord]:
        trials = self.study.get_trials(deepcopy=False, states=states)
        return [ModelRecord.from_trial(t) for t in trials if attr.PARENT in t.user_attrs]

    def finished(self) -> list[ModelRecord]:
        return self.records((TrialState.COMPLETE,))

    def record(self, number: int) -> ModelRecord:
        for rec in self.records():
            if rec.trial == number:
                return rec
        raise StorageError(f"study {self.name!r} has no trial {number}")

    def download(self, record: ModelRecord, kind: str, path: Path) -> None:
        if kind not in record.artifacts:
            raise StorageError(f"trial {record.trial} has no {kind} artifact")
        try:
            download_artifact(
                artifact_store=self.artifacts,
                file_path=str(path),
                artifact_id=record.artifacts[kind],
            )
        except ArtifactNotFound as exc:
            raise StorageError(
                f"the {kind} file of trial {record.trial} is missing from {self.artifact_dir}; "
                "keep the artifacts folder beside the storage file"
            ) from exc

    # --- writing: one model is one trial -------------------------------------------------

    def ask(self, parent: int | None) -> Trial:
        """Open the trial of a new model: visible as running, with its parent, from now on."""
        trial = self.study.ask()
        trial.set_user_attr(attr.PARENT, parent)
        trial.set_user_attr(attr.WORKER, f"{os.uname().nodename}:{os.getpid()}")
        return trial

    def set_architecture(
        self, trial: Trial, genotype: Genotype, growth: dict[str, Any] | None
    ) -> None:
        trial.set_user_attr(attr.GENOTYPE, genotype.to_dict())
        trial.set_user_attr(attr.ARCH_ID, genotype.arch_id)
        trial.set_user_attr(attr.GROWTH, growth)

    def set_attrs(self, trial: Trial, values: dict[str, Any]) -> None:
        for key, value in values.items():
            trial.set_user_attr(key, value)

    def upload(self, trial: Trial, files: dict[str, Path]) -> dict[str, str]:
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        ids = {
            kind: upload_artifact(
                artifact_store=self.artifacts, file_path=str(path), study_or_trial=trial
            )
            for kind, path in files.items()
        }
        trial.set_user_attr(attr.ARTIFACTS, ids)
        return ids

    def complete(
        self, trial: Trial, val_error: float, latency_ms: float, budget_ms: float
    ) -> FrozenTrial:
        trial.set_constraint("latency_over_budget_ms", latency_ms - budget_ms)
        return self.study.tell(trial, [val_error, latency_ms])

    def fail(self, trial: Trial, reason: str, details: dict[str, Any] | None = None) -> None:
        trial.set_user_attr(attr.FAIL_REASON, reason)
        for key, value in (details or {}).items():
            trial.set_user_attr(key, value)
        self.study.tell(trial, state=TrialState.FAIL)


def _differences(
    old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...], prefix: str = ""
) -> list[tuple[str, str, str]]:
    """(key, old, new) for each differing key, shortened; nested mappings name the inner key."""
    found: list[tuple[str, str, str]] = []
    for key in keys:
        was, now = old.get(key), new.get(key)
        if isinstance(was, dict) and isinstance(now, dict):
            inner = tuple(sorted(set(was) | set(now)))
            found += _differences(was, now, inner, f"{prefix}{key}.")
        elif was != now:
            found.append((prefix + key, _short(was), _short(now)))
    return found


def _short(value: Any, limit: int = 60) -> str:
    text = "(not set)" if value is None else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
