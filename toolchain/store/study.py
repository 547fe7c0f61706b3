"""Opening storages and studies, and writing one model as one trial (ask ... tell).

One multi-objective study per search: minimise (validation error, latency in ms on the
search's profile). Feasibility under the budget is stored as an Optuna constraint
(``Trial.set_constraint``), so Optuna's own tools (best trials, plots, the dashboard) see it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from toolchain.arch.genotype import Genotype
from toolchain.errors import StorageError
from toolchain.store import records as attr
from toolchain.store.heartbeat import HeartbeatSettings
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
    "measure",
)
META_DEFAULTS = {"measure": "local"}  # what a study made before a key existed was searched with
SQLITE_TIMEOUT_S = 60  # several local processes may share one SQLite file
CREATE_ATTEMPTS = 5
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info"})
META_WAIT_S = 10.0
ABANDONED_CLAIM = timedelta(minutes=10)  # a claim takes milliseconds; see _being_claimed
DEADLINE_KEY = "deadline"  # study user attributes beside META_KEY
PROBE_KEY = "probe_images"
# What a process that lost the race to create a new storage's tables sees, by database: the
# loser of the alembic_version insert on SQLite sees a UNIQUE constraint fail.
RACE_WORDS = ("already exists", "duplicate", "locked", "unique constraint failed")


def open_storage(
    url: str, *, must_exist: bool, heartbeat: HeartbeatSettings | None = None
) -> optuna.storages.RDBStorage:
    """Open an Optuna RDB storage; ``must_exist`` for commands that only read.

    A SQLite file that holds something other than an Optuna storage is refused before Optuna
    would add its tables to it. ``heartbeat`` is for workers that run trials (``heartbeat.py``).
    """
    db = sqlite_path(url)
    engine_kwargs: dict[str, Any] = {}
    if db is not None:
        if must_exist and not db.is_file():
            raise StorageError(
                f"no storage at {db}; run `petri search --storage {masked(url)}` first"
            )
        if not db.parent.is_dir():
            raise StorageError(
                f"cannot open storage {masked(url)}: folder {db.parent} does not exist"
            )
        _check_sqlite_file(db, must_exist)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        engine_kwargs["pool_pre_ping"] = True  # a server may drop idle connections mid-search
    try:
        storage = _created_once_the_race_is_over(
            lambda: optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat.interval_s if heartbeat else None,
                grace_period=heartbeat.grace_s if heartbeat else None,
            )
        )
    except Exception as exc:  # SQLAlchemy/driver errors differ by database; all mean "cannot open"
        raise StorageError(f"cannot open storage {masked(url)}: {_first_line(exc)}") from exc
    if db is not None:
        _writers_queue_for_the_lock(storage.engine)
    return storage


def check_reachable(url: str) -> None:
    """Fail now, before any data is read, on a malformed URL or a server that does not answer.

    A SQLite file is only checked for its shape: opening it would create it.
    """
    if sqlite_path(url) is not None:
        return
    engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # driver errors differ by database; all mean "cannot open"
        raise StorageError(f"cannot open storage {masked(url)}: {_first_line(exc)}") from exc
    finally:
        engine.dispose()


def _first_line(exc: Exception) -> str:
    return masked((str(exc).strip().splitlines() or [exc.__class__.__name__])[0])


def _created_once_the_race_is_over(
    create: Callable[[], optuna.storages.RDBStorage],
) -> optuna.storages.RDBStorage:
    """Processes that open a new storage at once race to create its tables; the losers see
    one of RACE_WORDS and succeed on a second try."""
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return create()
        except sqlalchemy.exc.DBAPIError as exc:
            lost_the_race = any(word in str(exc).lower() for word in RACE_WORDS)
            if not lost_the_race or attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _writers_queue_for_the_lock(engine: sqlalchemy.engine.Engine) -> None:
    """Every SQLite transaction takes the write lock when it begins (BEGIN IMMEDIATE).

    Two processes that each read and then write would otherwise deadlock, and SQLite fails
    one of them at once with "database is locked" instead of letting it wait its timeout.
    This is SQLAlchemy's documented recipe for pysqlite; connections already pooled are
    dropped so that every later one follows it.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


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
    # Any of Optuna's tables will do: another process may be creating the rest right now.
    if not tables & OPTUNA_TABLES:
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
    def storage(self) -> optuna.storages.BaseStorage:
        return self.study._storage  # Optuna keeps it private; heartbeats need it

    @property
    def meta(self) -> dict[str, Any]:
        return {**META_DEFAULTS, **self.study.user_attrs[META_KEY]}

    @property
    def profile_name(self) -> str:
        return str(self.meta["profile"]["name"])

    @property
    def measures_remotely(self) -> bool:
        """Its models are measured by profiling workers, into its target's study."""
        return self.meta["measure"] == "remote"

    @classmethod
    def load(cls, url: str, name: str, artifacts: Path | None = None) -> SearchStudy:
        """An existing study, for reading; ``artifacts`` overrides the default folder."""
        return cls._from_storage(open_storage(url, must_exist=True), url, name, artifacts)

    @classmethod
    def open_for_search(
        cls,
        url: str,
        name: str,
        meta: dict[str, Any],
        artifacts: Path | None = None,
        heartbeat: HeartbeatSettings | None = None,
    ) -> SearchStudy:
        """Create the study, or join it when ``meta`` matches what it was created with.

        Workers started together race to create it; the losers join the winner's study.
        """
        storage = open_storage(url, must_exist=False, heartbeat=heartbeat)
        # A remote search's models have no latency until a profiling worker measures them,
        # into the target's study (targets.py); its own trials have one objective.
        objectives = (
            ["val_error"] if meta.get("measure") == "remote" else ["val_error", "latency_ms"]
        )
        try:
            study = optuna.create_study(
                study_name=name, storage=storage, directions=["minimize"] * len(objectives)
            )
        except optuna.exceptions.DuplicatedStudyError:
            found = cls._from_storage(storage, url, name, artifacts, wait_s=META_WAIT_S)
            found.check_same_search(meta)
            return found
        with warnings.catch_warnings():  # experimental in Optuna, stable enough for a label
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(objectives)
        study.set_user_attr(META_KEY, meta)
        return cls(study, artifacts or default_artifact_dir(url))

    @classmethod
    def _from_storage(
        cls,
        storage: optuna.storages.BaseStorage,
        url: str,
        name: str,
        artifacts: Path | None,
        wait_s: float = 0.0,
    ) -> SearchStudy:
        names = study_names(storage)
        if name not in names:
            raise StorageError(
                f"no study {name!r} in {masked(url)}; available: {', '.join(names) or 'none'}"
            )
        study = optuna.load_study(study_name=name, storage=storage)
        # A study created a moment ago by another worker gets its metadata right after.
        give_up = time.monotonic() + wait_s
        while META_KEY not in study.user_attrs:
            if time.monotonic() >= give_up:
                raise StorageError(f"study {name!r} was not made by petri search")
            time.sleep(0.1)
        return cls(study, artifacts or default_artifact_dir(url))

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
        differences = _differences(self.meta, {**META_DEFAULTS, **meta}, RESUME_KEYS)
        if differences:
            listed = "; ".join(f"{key} {was}, not {now}" for key, was, now in differences)
            raise StorageError(
                f"study {self.name!r} was searched with {listed}; resume with the same "
                "settings and data, or choose a new --study"
            )

    # --- reading -------------------------------------------------------------------------

    def records(self, states: tuple[TrialState, ...] | None = None) -> list[ModelRecord]:
        trials = self.study.get_trials(deepcopy=False, states=states)
        return [ModelRecord.from_trial(t) for t in trials if _is_model(t)]

    def finished(self) -> list[ModelRecord]:
        return self.records((TrialState.COMPLETE,))

    def record(self, number: int) -> ModelRecord:
        """Model ``number``; a finished trial of it first (a target's study may hold a failed
        measurement of the same model beside the one that succeeded)."""
        found = sorted((r for r in self.records() if r.trial == number), key=lambda r: r.finished)
        if not found:
            raise StorageError(f"study {self.name!r} has no trial {number}")
        return found[-1]

    def download(self, record: ModelRecord, kind: str, path: Path) -> None:
        if kind not in record.artifacts:
            raise StorageError(f"trial {record.trial} has no {kind} artifact")
        self._download(record.artifacts[kind], path, f"{kind} file of trial {record.trial}")

    def _download(self, artifact_id: str, path: Path, what: str) -> None:
        try:
            download_artifact(
                artifact_store=self.artifacts, file_path=str(path), artifact_id=artifact_id
            )
        except ArtifactNotFound as exc:
            raise StorageError(
                f"the {what} is missing from {self.artifact_dir}; keep the artifacts folder "
                "beside the storage file, or give the shared one with --artifacts"
            ) from exc

    def has_probe_images(self) -> bool:
        return PROBE_KEY in self.study.user_attrs

    def probe_images(self) -> np.ndarray:
        """The validation images models are measured on (see :meth:`store_probe_images`)."""
        if PROBE_KEY not in self.study.user_attrs:
            raise StorageError(
                f"study {self.name!r} keeps no probe images (it was made by an older petri); "
                "run `petri search` on it once to store them"
            )
        with tempfile.TemporaryDirectory(prefix="petri-") as tmp:
            path = Path(tmp) / "probe.npy"
            self._download(self.study.user_attrs[PROBE_KEY], path, "probe images")
            return np.load(path, allow_pickle=False)

    # --- writing: one model is one trial -------------------------------------------------

    def store_probe_images(self, images: np.ndarray) -> None:
        """Keep the images a profiling worker measures on, once per study: it may run on a
        device that has the storage but not the dataset."""
        if PROBE_KEY in self.study.user_attrs:
            return
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="petri-") as tmp:
            path = Path(tmp) / "probe.npy"
            np.save(path, images, allow_pickle=False)
            artifact = upload_artifact(
                artifact_store=self.artifacts, file_path=str(path), study_or_trial=self.study
            )
        self.study.set_user_attr(PROBE_KEY, artifact)

    def ask(self) -> Trial:
        """Open the trial of a new model: visible as running from now on (see :meth:`claim`)."""
        with warnings.catch_warnings():  # Optuna expects heartbeats only under optimize()
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            trial = self.study.ask()
        trial.set_user_attr(attr.WORKER, f"{os.uname().nodename}:{os.getpid()}")
        return trial

    def claim(self, trial: Trial, parent: int | None, seed_width: int | None) -> None:
        """Say what the trial trains: a child of ``parent``, or a seed of ``seed_width``.

        Until then the trial is not a model (:meth:`records` leaves it out), and the workers
        that asked after it wait for it (:meth:`numbers_before`).
        """
        trial.set_user_attr(attr.SEED_WIDTH, seed_width)
        trial.set_user_attr(attr.CLAIMED_AT, time.time())  # scripts/bench_workers.py checks it
        trial.set_user_attr(attr.PARENT, parent)  # last: its presence is the claim

    def fail_running(self) -> list[int]:
        """Fail every running trial (their workers are known to be gone); their numbers."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in running:  # without a reason: read as "its worker stopped beating"
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        return [t.number for t in running]

    def withdraw(self, trial: Trial) -> None:
        """Close a trial that found nothing to train: bookkeeping, never a model."""
        trial.set_user_attr(attr.WITHDRAWN, True)
        self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def numbers_before(self, number: int) -> tuple[set[int], bool]:
        """The trial numbers below ``number``, and whether all of them have been claimed.

        Optuna numbers the trials of a study in the order they were created, under a lock on
        the study, so "asked before me" is "numbered below me" for every worker alike.
        """
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < number]
        return {t.number for t in earlier}, not any(map(_being_claimed, earlier))

    def shared_deadline(self, limit_s: float | None) -> float | None:
        """The Unix time after which no worker of this study starts a model.

        The first worker sets it; workers that join while it lies ahead share it, so a time
        limit holds for the study as a whole. A run started after it has passed sets anew.
        """
        if limit_s is None:
            return None
        current = self.study.user_attrs.get(DEADLINE_KEY)
        if current is not None and current > time.time():
            return float(current)
        deadline = time.time() + limit_s
        self.study.set_user_attr(DEADLINE_KEY, deadline)
        return deadline

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
        self, trial: Trial, val_error: float, latency_ms: float | None, budget_ms: float
    ) -> None:
        """Tell the finished model (``latency_ms`` None in a remote search); raises
        ``UpdateFinishedTrialError`` when another worker has failed the trial meanwhile (its
        heartbeat went stale)."""
        values = [val_error]
        if latency_ms is not None:
            trial.set_constraint("latency_over_budget_ms", latency_ms - budget_ms)
            values.append(latency_ms)
        told = self.study.tell(trial, values, skip_if_finished=True)
        if told.state != TrialState.COMPLETE:
            raise UpdateFinishedTrialError(f"trial {trial.number} is already {told.state.name}")

    def fail(self, trial: Trial, reason: str, details: dict[str, Any] | None = None) -> bool:
        """Close the trial as failed with its reason; False if it was already closed."""
        try:
            trial.set_user_attr(attr.FAIL_REASON, reason)
            for key, value in (details or {}).items():
                trial.set_user_attr(key, value)
        except UpdateFinishedTrialError:
            return False
        self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return True


def _is_model(trial: FrozenTrial) -> bool:
    return attr.PARENT in trial.user_attrs and not trial.user_attrs.get(attr.WITHDRAWN)


def _being_claimed(trial: FrozenTrial) -> bool:
    """Running, not yet claimed, and young enough to be claimed still.

    A worker killed between ``ask`` and its first heartbeat leaves a trial that never goes
    stale; after the longest grace period it no longer holds the others up.
    """
    if trial.state != TrialState.RUNNING or attr.PARENT in trial.user_attrs:
        return False
    assert trial.datetime_start is not None
    return datetime.now() - trial.datetime_start < ABANDONED_CLAIM


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
