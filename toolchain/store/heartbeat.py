"""Heartbeats: how workers that share a study notice that one of them has died.

A running trial's worker records a heartbeat in the storage every ``interval_s`` from a
background thread, whatever its main thread is doing (training, exporting, building a
TensorRT engine: the thread keeps beating through all of them). Any worker that finds a
running trial whose last heartbeat is older than ``grace_s`` marks it failed
(:func:`fail_stale`), so its model is trained again and its parent returns to the pool.

The grace period is what must outlast the longest pause of a living worker: a process
stopped by its scheduler or a machine that sleeps. Its default of 10 minutes is generous on
purpose; a stale trial only costs the workers that time before its model is taken again.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from types import TracebackType

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the contract RDBStorage implements
from optuna.trial import Trial

DEFAULT_INTERVAL_S = 60
GRACE_INTERVALS = 10  # a trial is stale after this many missed heartbeats


@dataclass(frozen=True)
class HeartbeatSettings:
    interval_s: int = DEFAULT_INTERVAL_S

    @property
    def grace_s(self) -> int:
        return self.interval_s * GRACE_INTERVALS


class Heartbeat:
    """Beats for one trial while the ``with`` block runs; the first beat before it starts.

    Beating at once matters: Optuna only finds a trial stale once it has a heartbeat, so a
    worker killed before its first beat would leave its trial running for ever.
    """

    def __init__(self, storage: BaseStorage, trial: Trial) -> None:
        self.storage = storage
        # Optuna keeps the storage's id of a trial private; the heartbeat API needs it.
        self.trial_id = trial._trial_id
        # Optuna wraps an RDBStorage in a cache that passes the heartbeat calls through.
        self.interval_s = (
            storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="petri-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self.interval_s is not None:
            self._record()
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        assert self.interval_s is not None
        while not self._stop.wait(self.interval_s):
            try:
                self._record()
            except Exception as exc:  # a storage hiccup must not stop the beating
                warnings.warn(f"heartbeat not recorded ({exc!r}); trying again", stacklevel=1)

    def _record(self) -> None:
        assert isinstance(self.storage, BaseHeartbeat)
        self.storage.record_heartbeat(self.trial_id)


def fail_stale(study: optuna.Study) -> None:
    """Mark failed every running trial of ``study`` whose worker stopped beating."""
    with warnings.catch_warnings():  # experimental in Optuna since 2.9, and what we need
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
