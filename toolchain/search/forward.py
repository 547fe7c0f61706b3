"""The forward-search loop: choose a parent on the lower hull, grow a child, train it fully,
export, verify and measure it, and record it as one trial. Repeat until a stop condition.

Everything the loop decides from is read back from the study before each model, so a search
that was interrupted goes on where it stopped, and finished models are never trained again.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import Trial, TrialState

from toolchain.arch.genotype import Genotype, seed_genotype
from toolchain.bench import Target
from toolchain.data import Dataset
from toolchain.errors import ModelFailed, NothingFitsError, PetriError
from toolchain.pareto import pick_under_budget
from toolchain.presets import Preset
from toolchain.progress import PHASE_WORDS, Progress, Quiet, Status
from toolchain.search.candidates import CandidateConfig
from toolchain.search.evaluate import PhaseClock, TrainedModel, build_model, train_and_measure
from toolchain.search.growth import GROWTH_RULES, Child, GrowthContext
from toolchain.search.parents import choose_parent
from toolchain.store import ModelRecord, SearchStudy
from toolchain.store import records as attr
from toolchain.store.heartbeat import Heartbeat, fail_stale
from toolchain.store.targets import measured_latencies
from toolchain.train import TrainConfig

MAX_CONSECUTIVE_FAILURES = 5
POLL_S = 2.0  # how often a worker with nothing to start looks at the study again
CLAIM_POLL_S = 0.2  # how often it looks while an earlier trial is being claimed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Outcome = Literal["finished", "failed", "dropped"]  # dropped: another worker closed the trial


@dataclass(frozen=True)
class SearchConfig:
    max_models: int
    budget_ms: float
    seed: int
    preset: Preset
    time_limit_s: float | None = None
    seed_widths: tuple[int, ...] = (16,)  # one seed model per width starts the pool
    mode: str = "macro"  # "cell": cells of a type share one template (arch.genotype.MODES)
    growth: str = "petridish"  # a name in GROWTH_RULES
    candidates: CandidateConfig = CandidateConfig()
    budget_slack: float = 0.10  # models over budget * (1 + slack) are never expanded
    eps: float = 0.025  # relative band above the hull that is eligible for expansion
    export_batch: int = 1  # the profile's batch size


@dataclass(frozen=True)
class Step:
    parent: ModelRecord | None  # None: train a seed model of width seed_width
    seed_width: int | None = None


@dataclass(frozen=True)
class Plan:
    """What one trial trains: the architecture, its warm start, how it came about, epochs."""

    genotype: Genotype
    init_state: dict[str, torch.Tensor] | None  # None: from scratch
    record: dict[str, Any] | None  # stored on the trial as its growth record
    epochs: int


@dataclass(frozen=True)
class SearchSummary:
    trained: list[int]
    failed: list[int]
    stop_reason: str


class ForwardSearch:
    def __init__(
        self,
        study: SearchStudy,
        data: Dataset,
        target: Target | None,
        config: SearchConfig,
        progress: Progress | None = None,
    ) -> None:
        """``target`` None: a remote search; profiling workers measure its models."""
        self.study = study
        self.data = data
        self.target = target
        self.config = config
        self.progress = progress or Quiet()
        self._last_wait = ""

    def run(self) -> SearchSummary:
        """Train models until the study has ``max_models`` finished, or time or parents run out.

        Several workers may run this on one study: each reads the whole study before each
        model, counts the others' running models, and settles its choice against theirs.
        """
        deadline = self.study.shared_deadline(self.config.time_limit_s)
        trained: list[int] = []
        failed: list[int] = []
        failures_in_a_row = 0
        while True:
            fail_stale(self.study.study)
            measured = self.measured_latencies()
            everything = self.models(measured)
            finished = [r for r in everything if r.finished]
            running = [r for r in everything if r.state == TrialState.RUNNING]
            pending = [] if measured is None else [r for r in finished if r.trial not in measured]
            self.progress.status(
                Status(len(finished), self.config.max_models, self.best_line(finished), deadline)
            )
            if len(finished) >= self.config.max_models:
                reason = f"--max-models {self.config.max_models} reached ({len(finished)} finished)"
                break
            if deadline is not None and time.time() >= deadline:
                reason = "time limit reached"
                break
            step = None
            if len(finished) + len(running) < self.config.max_models:
                step = self.next_step(finished, everything)
            if step is None and (running or pending):
                self.wait_for_others(running, pending)
                continue
            if step is None:
                reason = "no model under the budget is left to expand"
                break
            number, outcome = self.run_step(step, {r.trial for r in everything}, len(finished))
            if outcome == "dropped":
                continue
            (trained if outcome == "finished" else failed).append(number)
            failures_in_a_row = 0 if outcome == "finished" else failures_in_a_row + 1
            if failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
                raise PetriError(
                    f"the last {MAX_CONSECUTIVE_FAILURES} models failed (their reasons are in "
                    "`petri front`); try a smaller learning rate or another preset"
                )
        return SearchSummary(trained, failed, reason)

    def best_line(self, finished: list[ModelRecord]) -> str | None:
        """The best validation accuracy under the budget so far, for the progress display."""
        try:
            best = pick_under_budget(finished, self.config.budget_ms)
        except NothingFitsError:
            return None
        return f"{best.val_accuracy:.2%} (trial {best.trial})"

    def wait_for_others(self, running: list[ModelRecord], pending: list[ModelRecord]) -> None:
        """Nothing to start until another worker's model finishes (or goes stale), or a
        profiling worker measures one; said once for each new state of affairs."""
        said = []
        if running:
            numbers = ", ".join(str(r.trial) for r in running)
            said.append(f"the models other workers are training (trials {numbers})")
        if pending:
            numbers = ", ".join(str(r.trial) for r in pending)
            said.append(f"the profiling workers to measure trials {numbers}")
        line = "waiting for " + " and ".join(said)
        if line != self._last_wait:
            self.progress.log(line)
            self._last_wait = line
        time.sleep(POLL_S)

    def measured_latencies(self) -> dict[int, float | None] | None:
        """A remote search's latencies measured so far (None: this search measures itself)."""
        return None if self.target is not None else measured_latencies(self.study)

    def models(self, measured: dict[int, float | None] | None) -> list[ModelRecord]:
        """The study's models, in a remote search with the latencies ``measured`` so far."""
        everything = self.study.records()
        if measured is None:
            return everything
        return [replace(r, latency_ms=measured.get(r.trial)) for r in everything]

    # --- choosing what to train next ------------------------------------------------------

    def next_step(self, finished: list[ModelRecord], everything: list[ModelRecord]) -> Step | None:
        """A seed width no worker has taken yet, else a parent from the hull (None: none)."""
        taken = {r.seed_width for r in everything if r.state != TrialState.FAIL}
        taken |= {r.architecture.channels for r in finished if r.parent is None}
        for width in self.config.seed_widths:
            if width not in taken:
                return Step(None, seed_width=width)
        rng = np.random.default_rng([self.config.seed, len(everything)])
        limit = self.config.budget_ms * (1.0 + self.config.budget_slack)
        parent = choose_parent(finished, everything, limit, self.config.eps, rng)
        return None if parent is None else Step(parent)

    def settle(self, trial: Trial, step: Step, seen: set[int]) -> Step | None:
        """The step ``trial`` trains, re-chosen until it has seen every earlier trial's claim.

        Claims are thereby made in trial-number order, each knowing every earlier one, as if
        one worker made them all: two workers expand one parent at once only when the
        sampling rule, knowing of the first, picks it again. None: nothing is left to start.
        """
        while True:
            earlier, all_claimed = self.study.numbers_before(trial.number)
            if not all_claimed:
                fail_stale(self.study.study)  # an earlier worker may have died mid-claim
                time.sleep(CLAIM_POLL_S)
                continue
            if earlier <= seen:
                return step
            seen = seen | earlier
            others = [r for r in self.models(self.measured_latencies()) if r.trial != trial.number]
            finished = [r for r in others if r.finished]
            running = [r for r in others if r.state == TrialState.RUNNING]
            if len(finished) + len(running) >= self.config.max_models:
                return None
            again = self.next_step(finished, others)
            if again is None:
                return None
            step = again

    def reductions(self) -> int:
        """Two reductions when the image allows (32 -> 8, 8 -> 2), fewer for tiny inputs."""
        side = min(self.data.input_shape[1:])
        return max(0, min(2, int(np.log2(side)) - 1))

    # --- training one model as one trial ---------------------------------------------------

    def run_step(self, step: Step, seen: set[int], n_finished: int) -> tuple[int, Outcome]:
        trial = self.study.ask()
        with Heartbeat(self.study.storage, trial):
            settled = self.settle(trial, step, seen)
            if settled is None:  # other workers took every step it could take
                self.study.withdraw(trial)
                return trial.number, "dropped"
            parent = settled.parent.trial if settled.parent else None
            self.study.claim(trial, parent, settled.seed_width)
            try:
                return trial.number, self.train_trial(trial, settled, n_finished)
            except UpdateFinishedTrialError:
                self.progress.log(
                    f"trial {trial.number} was failed by another worker while it trained (its "
                    "heartbeat went stale); its result is dropped"
                )
                return trial.number, "dropped"

    def train_trial(self, trial: Trial, step: Step, n_finished: int) -> Outcome:
        parent_number = step.parent.trial if step.parent else None
        label = f"model {n_finished + 1}/{self.config.max_models} (trial {trial.number}"
        label += f", child of {parent_number})" if step.parent else ", from scratch)"
        clock = self.phase_clock(label)
        try:
            with tempfile.TemporaryDirectory(prefix="petri-") as tmp:
                result = self.grow_and_train(step, trial, Path(tmp), clock, label)
                with clock.phase("store"):
                    self.study.set_attrs(trial, result.attrs)
                    self.study.upload(trial, result.files)
                self.study.set_attrs(trial, {attr.PHASE_SECONDS: clock.seconds})
                self.study.complete(
                    trial, result.val_error, result.latency_ms, self.config.budget_ms
                )
        except ModelFailed as exc:
            self.progress.log(f"{label}: failed: {exc.reason}")
            details = {**exc.details, attr.PHASE_SECONDS: clock.seconds}
            if not self.study.fail(trial, exc.reason, details):
                raise UpdateFinishedTrialError(f"trial {trial.number} closed meanwhile") from exc
            return "failed"
        except BaseException as exc:
            # Ctrl-C, SIGTERM or a crash: close the trial so no orphan "running" model is left,
            # even when a second Ctrl-C arrives while we write (we are leaving anyway).
            stopped_by = "Ctrl-C or SIGTERM" if isinstance(exc, KeyboardInterrupt) else repr(exc)
            with interrupts_ignored():
                self.study.fail(trial, f"interrupted before the model was finished ({stopped_by})")
            raise
        a = result.attrs
        latency = "latency pending (remote)"
        if self.target is not None:
            latency = f"{self.target.profile.budget_statistic} {result.latency_ms:.3f} ms"
        self.progress.log(
            f"{label}: val {a[attr.VAL_ACCURACY]:.2%}  test {a[attr.TEST_ACCURACY]:.2%}  "
            f"{latency}  params {a[attr.PARAMS]:,}"
        )
        return "finished"

    def phase_clock(self, label: str) -> PhaseClock:
        """A clock of the model's phases that also shows them on the progress display."""

        def entered(name: str) -> None:
            if name in PHASE_WORDS:
                self.progress.phase(label, PHASE_WORDS[name])

        def left(name: str, seconds: float) -> None:
            self.progress.phase_done(label, name, seconds)

        return PhaseClock(on_enter=entered, on_exit=left)

    def grow_and_train(
        self, step: Step, trial: Trial, workdir: Path, clock: PhaseClock, label: str
    ) -> TrainedModel:
        """Make the architecture (see :meth:`plan`), then train, export and measure it."""
        preset = self.config.preset
        model_seed = self.config.seed * 100_003 + trial.number
        plan = self.plan(step, trial, model_seed, workdir, clock, label)
        self.study.set_architecture(trial, plan.genotype, plan.record)
        self.progress.phase(label, f"training {plan.genotype.arch_id}")
        model = build_model(plan.genotype, self.data, plan.init_state, model_seed)
        config = TrainConfig(epochs=plan.epochs, batch_size=preset.batch_size, lr=preset.lr)

        def on_epoch(epoch: int, epochs: int, loss: float) -> None:
            self.progress.phase(label, f"training, epoch {epoch}/{epochs}, loss {loss:.3f}")

        return train_and_measure(
            model,
            self.data,
            self.target,
            self.config.export_batch,
            config,
            model_seed,
            workdir,
            clock,
            on_epoch,
        )

    def plan(
        self,
        step: Step,
        trial: Trial,
        model_seed: int,
        workdir: Path,
        clock: PhaseClock,
        label: str,
    ) -> Plan:
        """A seed model trained from scratch, or a child grown by the growth rule."""
        preset = self.config.preset
        if step.parent is None:
            assert step.seed_width is not None
            genotype = seed_genotype(step.seed_width, self.reductions(), self.config.mode)
            return Plan(genotype, None, None, preset.seed_epochs)
        self.progress.phase(label, f"growing from trial {step.parent.trial} ({self.config.growth})")
        with clock.phase("growth"):
            child = self.grow(step.parent, trial.number, model_seed, workdir)
        return Plan(child.genotype, child.init_state, child.record, preset.child_epochs)

    def grow(self, parent: ModelRecord, number: int, seed: int, workdir: Path) -> Child:
        weights = workdir / "parent.pt"
        self.study.download(parent, "weights", weights)
        records = self.study.records()
        known = frozenset(r.arch_id for r in records if r.arch_id and r.fail_reason is None)
        used = frozenset(
            c
            for r in records
            if r.parent == parent.trial and r.growth
            for c in r.growth.get("merge_points", [])
        )
        context = GrowthContext(
            data=self.data,
            rng=np.random.default_rng([self.config.seed, number]),
            seed=seed,
            known_arch_ids=known,
            candidates=self.config.candidates,
            used_merge_points=used,
        )
        rule = GROWTH_RULES[self.config.growth]
        return rule(parent.architecture, torch.load(weights, weights_only=True), context)


@contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM for a short storage write made on the way out anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be changed from the main thread
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
