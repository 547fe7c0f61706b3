"""Profiling workers: measure a search's finished models on this machine's target.

``petri profile --study NAME --hw PROFILE`` runs one: it takes every finished model of the
search that has no measurement on the profile yet, times it like the search would
(``measure_model``), and writes the result into the target's study (``store/targets.py``).
With ``--worker`` it keeps polling for new models until stopped.

Several workers may serve one target. Each model is measured once: a worker opens its trial
first, then waits until every earlier-numbered trial of the target's study has said which
model it measures, and takes the first model none of them has (the search's claims work the
same way, ``ForwardSearch.settle``). A worker that dies mid-measurement stops beating; its
trial goes stale and the model is taken by the next worker that looks.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import Trial

from toolchain.bench import Target
from toolchain.errors import ModelFailed, PetriError, StorageError
from toolchain.hw import load_profile
from toolchain.search.evaluate import PhaseClock, measure_model
from toolchain.store import ModelRecord, SearchStudy
from toolchain.store import records as attr
from toolchain.store.heartbeat import Heartbeat, HeartbeatSettings, fail_stale
from toolchain.store.study import check_reachable
from toolchain.store.targets import claim_measurement, open_target_study, unmeasured

CLAIM_POLL_S = 0.2  # how often a worker looks while an earlier trial is being claimed

Log = Callable[[str], None]


def profile_study(
    url: str,
    study: str,
    hw: str,
    *,
    artifacts: Path | None = None,
    allow_other_device: bool = False,
    heartbeat: HeartbeatSettings | None = None,
    poll_s: float | None = None,
    log: Log = lambda _: None,
) -> ProfilingSummary:
    """What ``petri profile --study`` does; checks the target before touching the storage."""
    profile = load_profile(hw)
    target = Target.here(profile, allow_other_device)
    check_reachable(url)
    if poll_s is None:
        source = SearchStudy.load(url, study, artifacts)
    else:  # a worker may be started before the search it serves
        source = wait_for_search(url, study, artifacts, poll_s, log)
    measured = open_target_study(source, url, profile, heartbeat or HeartbeatSettings())
    log(f"measuring the models of study {study!r} on {profile.name} into {measured.name!r}")
    return ProfilingWorker(source, measured, target, log).run(poll_s)


def wait_for_search(
    url: str, name: str, artifacts: Path | None, poll_s: float, log: Log
) -> SearchStudy:
    """The search's study once it exists and holds its probe images; said once while not."""
    said = False
    while True:
        try:
            source = SearchStudy.load(url, name, artifacts)
            if source.has_probe_images():
                return source
            why = "its search to store the images models are measured on"
        except StorageError as exc:  # no such study yet
            why = f"a search to create it ({exc})"
        if not said:
            log(f"waiting for study {name!r}: for {why}; looking again every {poll_s:g} s")
            said = True
        time.sleep(poll_s)


@dataclass
class ProfilingSummary:
    measured: list[int] = field(default_factory=list)  # model numbers
    failed: list[int] = field(default_factory=list)


class ProfilingWorker:
    def __init__(
        self, source: SearchStudy, measured: SearchStudy, target: Target, log: Log
    ) -> None:
        self.source = source  # the search's study
        self.measured = measured  # its target's study, written here
        self.target = target
        self.log = log
        self.probe = source.probe_images()

    def run(self, poll_s: float | None) -> ProfilingSummary:
        """Measure every unmeasured model; with ``poll_s``, keep looking until stopped."""
        summary = ProfilingSummary()
        waiting_said = False
        while True:
            fail_stale(self.measured.study)
            if unmeasured(self.source, self.measured):
                self.measure_next(summary)
                waiting_said = False
                continue
            if poll_s is None:
                return summary
            if not waiting_said:
                self.log(f"all finished models are measured; looking again every {poll_s:g} s")
                waiting_said = True
            time.sleep(poll_s)

    def measure_next(self, summary: ProfilingSummary) -> None:
        trial = self.measured.ask()
        with Heartbeat(self.measured.storage, trial):
            model = self.settle(trial)
            if model is None:  # other workers took every model meanwhile
                self.measured.withdraw(trial)
                return
            claim_measurement(trial, self.source.study.get_trials(deepcopy=False)[model.trial])
            try:
                ok = self.measure(trial, model)
            except UpdateFinishedTrialError:
                self.log(f"model {model.trial}: failed by another worker meanwhile; dropped")
                return
            except BaseException:
                self.measured.withdraw(trial)  # interrupted: the model is left to the others
                raise
        (summary.measured if ok else summary.failed).append(model.trial)

    def settle(self, trial: Trial) -> ModelRecord | None:
        """The first model no earlier trial measures, once every earlier one has said which."""
        while True:
            _, all_claimed = self.measured.numbers_before(trial.number)
            if all_claimed:
                todo = unmeasured(self.source, self.measured)
                return todo[0] if todo else None
            fail_stale(self.measured.study)  # an earlier worker may have died mid-claim
            time.sleep(CLAIM_POLL_S)

    def measure(self, trial: Trial, model: ModelRecord) -> bool:
        """Measure ``model`` into ``trial``; False when the measurement failed (recorded)."""
        label = f"model {model.trial} on {self.target.profile.name}"
        self.log(f"{label}: measuring")
        clock = PhaseClock()
        with tempfile.TemporaryDirectory(prefix="petri-") as tmp:
            onnx_path = Path(tmp) / "model.onnx"
            try:
                self.source.download(model, "onnx", onnx_path)
                with clock.phase("measure"):
                    result = measure_model(self.target, onnx_path, self.probe, Path(tmp))
            except (ModelFailed, PetriError) as exc:
                reason = exc.reason if isinstance(exc, ModelFailed) else str(exc)
                self.log(f"{label}: failed: {reason}")
                details = exc.details if isinstance(exc, ModelFailed) else {}
                if not self.measured.fail(trial, reason, details):
                    raise UpdateFinishedTrialError(f"trial {trial.number} closed") from exc
                return False
            with clock.phase("store"):
                uploaded = self.measured.upload(trial, result.files)
        self.measured.set_attrs(
            trial,
            {
                **result.attrs,
                attr.ARTIFACTS: {**model.artifacts, **uploaded},
                attr.PHASE_SECONDS: clock.seconds,
            },
        )
        budget = float(self.measured.meta["budget_ms"])
        self.measured.complete(trial, model.val_error, result.latency_ms, budget)
        statistic = self.target.profile.budget_statistic
        self.log(f"{label}: {statistic} {result.latency_ms:.3f} ms")
        return True
