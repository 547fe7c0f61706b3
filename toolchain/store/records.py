"""Trial attributes (DESIGN §5) and the read-side view of one model: :class:`ModelRecord`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from toolchain.arch.genotype import Genotype

# User attribute names of a model's trial. Written in one place (SearchStudy) and read here.
GENOTYPE = "genotype"
ARCH_ID = "arch_id"
PARENT = "parent_trial"  # set as soon as a worker has chosen what the trial trains
WITHDRAWN = "withdrawn"  # a trial that found nothing to train: not a model
SEED_WIDTH = "seed_width"  # the width of a seed model, None for any other model
CLAIMED_AT = "claimed_at"  # Unix time a worker said what the trial trains
GROWTH = "growth"
CANDIDATES = "candidate_phase"
PARAMS = "params"
FLOPS = "flops"
VAL_ACCURACY = "val_accuracy"
VAL_ERROR = "val_error"
TEST_ACCURACY = "test_accuracy"
TEST_ERROR = "test_error"
EPOCHS = "epochs"
TRAIN_LOSSES = "train_losses"
PHASE_SECONDS = "phase_seconds"
LATENCY = "latency"
LATENCY_MS = "latency_ms"
# The tails again, flat: optuna-dashboard's trial table shows scalar attributes as columns.
LATENCY_P90_MS = "latency_p90_ms"
LATENCY_P99_MS = "latency_p99_ms"
PARITY = "parity"
PRECISION = "precision_check"  # fp16 against fp32 (None for fp32 profiles)
ARTIFACTS = "artifacts"
FAIL_REASON = "fail_reason"
WORKER = "worker"
SOURCE_TRIAL = "source_trial"  # in a target's study: the model's trial in its search study
# What a measurement on a target writes; the rest of a target's trial is its model's record.
MEASURED = (
    LATENCY,
    LATENCY_MS,
    LATENCY_P90_MS,
    LATENCY_P99_MS,
    PRECISION,
    ARTIFACTS,
    WORKER,
    PHASE_SECONDS,
    FAIL_REASON,
)
# Optuna fails a trial whose worker stopped beating without a word; petri's own failures
# always carry their reason.
STALE_REASON = "its worker stopped sending heartbeats (killed, or lost its storage)"


@dataclass(frozen=True)
class ModelRecord:
    """One trial of a search study, as the search and the reporting commands read it."""

    trial: int
    state: TrialState
    genotype: Genotype | None  # None while a child is still in its candidate phase
    arch_id: str | None
    parent: int | None
    params: int | None
    val_accuracy: float | None
    test_accuracy: float | None
    latency_ms: float | None
    latency: dict[str, Any] | None
    artifacts: dict[str, str]
    fail_reason: str | None
    growth: dict[str, Any] | None = None  # how it was grown from its parent
    flops: int | None = None
    seed_width: int | None = None
    parity: dict[str, Any] | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None  # None while running

    @property
    def finished(self) -> bool:
        return self.state == TrialState.COMPLETE

    @property
    def architecture(self) -> Genotype:
        assert self.genotype is not None, "only a model past its candidate phase has a genotype"
        return self.genotype

    @property
    def val_error(self) -> float:
        assert self.val_accuracy is not None, "only finished models have a validation error"
        return 1.0 - self.val_accuracy

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> ModelRecord:
        attrs = trial.user_attrs
        failed = trial.state == TrialState.FAIL
        return cls(
            trial=attrs.get(SOURCE_TRIAL, trial.number),  # a model keeps its number everywhere
            state=trial.state,
            genotype=Genotype.from_dict(attrs[GENOTYPE]) if GENOTYPE in attrs else None,
            arch_id=attrs.get(ARCH_ID),
            parent=attrs.get(PARENT),
            params=attrs.get(PARAMS),
            val_accuracy=attrs.get(VAL_ACCURACY),
            test_accuracy=attrs.get(TEST_ACCURACY),
            latency_ms=attrs.get(LATENCY_MS),
            latency=attrs.get(LATENCY),
            artifacts=attrs.get(ARTIFACTS, {}),
            fail_reason=attrs.get(FAIL_REASON, STALE_REASON if failed else None),
            growth=attrs.get(GROWTH),
            flops=attrs.get(FLOPS),
            seed_width=attrs.get(SEED_WIDTH),
            parity=attrs.get(PARITY),
            started_at=trial.datetime_start,
            completed_at=trial.datetime_complete,
        )
