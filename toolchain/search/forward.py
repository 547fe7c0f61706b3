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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import Trial

from toolchain.arch.genotype import Genotype, seed_genotype
from toolchain.bench import Target
from toolchain.data import Dataset
from toolchain.errors import ModelFailed, PetriError
from toolchain.presets import Preset
from toolchain.search.candidates import CandidateConfig
from toolchain.search.evaluate import PhaseClock, TrainedModel, build_model, train_and_measure
from toolchain.search.growth import GROWTH_RULES, Child, GrowthContext
from toolchain.search.parents import choose_parent
from toolchain.store import ModelRecord, SearchStudy
from toolchain.store import records as attr
from toolchain.train import TrainConfig

MAX_CONSECUTIVE_FAILURES = 5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Log = Callable[[str], None]


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
        target: Target,
        config: SearchConfig,
        log: Log = lambda _: None,
    ) -> None:
        self.study = study
        self.data = data
        self.target = target
        self.config = config
        self.log = log

    def run(self) -> SearchSummary:
        deadline = None
        if self.config.time_limit_s is not None:
            deadline = time.monotonic() + self.config.time_limit_s
        trained: list[int] = []
        failed: list[int] = []
        failures_in_a_row = 0
        while True:
            finished = self.study.finished()
            if len(finished) >= self.config.max_models:
                reason = f"--max-models {self.config.max_models} reached ({len(finished)} finished)"
                break
            if deadline is not None and time.monotonic() >= deadline:
                reason = "time limit reached"
                break
            step = self.next_step(finished)
            if step is None:
                reason = "no model under the budget is left to expand"
                break
            number, ok = self.run_step(step, len(finished))
            (trained if ok else failed).append(number)
            failures_in_a_row = 0 if ok else failures_in_a_row + 1
            if failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
                raise PetriError(
                    f"the last {MAX_CONSECUTIVE_FAILURES} models failed (their reasons are in "
                    "`petri front`); try a smaller learning rate or another preset"
                )
        return SearchSummary(trained, failed, reason)

    # --- choosing what to train next ------------------------------------------------------

    def next_step(self, finished: list[ModelRecord]) -> Step | None:
        trained_widths = {r.architecture.channels for r in finished if r.parent is None}
        for width in self.config.seed_widths:
            if width not in trained_widths:
                return Step(None, seed_width=width)
        everything = self.study.records()
        rng = np.random.default_rng([self.config.seed, len(everything)])
        limit = self.config.budget_ms * (1.0 + self.config.budget_slack)
        parent = choose_parent(finished, everything, limit, self.config.eps, rng)
        return None if parent is None else Step(parent)

    def reductions(self) -> int:
        """Two reductions when the image allows (32 -> 8, 8 -> 2), fewer for tiny inputs."""
        side = min(self.data.input_shape[1:])
        return max(0, min(2, int(np.log2(side)) - 1))

    # --- training one model as one trial ---------------------------------------------------

    def run_step(self, step: Step, n_finished: int) -> tuple[int, bool]:
        parent_number = step.parent.trial if step.parent else None
        trial = self.study.ask(parent_number)
        label = f"model {n_finished + 1}/{self.config.max_models} (trial {trial.number}"
        label += f", child of {parent_number})" if step.parent else ", from scratch)"
        clock = PhaseClock()
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
            self.log(f"{label}: failed: {exc.reason}")
            self.study.fail(trial, exc.reason, {**exc.details, attr.PHASE_SECONDS: clock.seconds})
            return trial.number, False
        except BaseException as exc:
            # Ctrl-C, SIGTERM or a crash: close the trial so no orphan "running" model is left,
            # even when a second Ctrl-C arrives while we write (we are leaving anyway).
            stopped_by = "Ctrl-C or SIGTERM" if isinstance(exc, KeyboardInterrupt) else repr(exc)
            with interrupts_ignored():
                self.study.fail(trial, f"interrupted before the model was finished ({stopped_by})")
            raise
        a, statistic = result.attrs, self.target.profile.budget_statistic
        self.log(
            f"{label}: val {a[attr.VAL_ACCURACY]:.2%}  test {a[attr.TEST_ACCURACY]:.2%}  "
            f"{statistic} {result.latency_ms:.3f} ms  params {a[attr.PARAMS]:,}"
        )
        return trial.number, True

    def grow_and_train(
        self, step: Step, trial: Trial, workdir: Path, clock: PhaseClock, label: str
    ) -> TrainedModel:
        """Make the architecture (see :meth:`plan`), then train, export and measure it."""
        preset = self.config.preset
        model_seed = self.config.seed * 100_003 + trial.number
        plan = self.plan(step, trial, model_seed, workdir, clock, label)
        self.study.set_architecture(trial, plan.genotype, plan.record)
        self.log(f"{label}: training {plan.genotype.arch_id}")
        model = build_model(plan.genotype, self.data, plan.init_state, model_seed)
        config = TrainConfig(epochs=plan.epochs, batch_size=preset.batch_size, lr=preset.lr)

        def on_epoch(epoch: int, epochs: int, loss: float) -> None:
            self.log(f"{label}: epoch {epoch}/{epochs}, loss {loss:.3f}")

        return train_and_measure(
            model, self.data, self.target, config, model_seed, workdir, clock, on_epoch
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
        self.log(f"{label}: growing from trial {step.parent.trial} ({self.config.growth})")
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
