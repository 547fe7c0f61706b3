"""Search strategies, registered by name: the forward search and the baselines it must beat.

* ``forward``: the Petridish loop (``forward.py``): seeds, then children grown from parents
  on the lower hull by the growth rule.
* ``random``: architectures of the same space (``space.py``) drawn at random and trained from
  scratch for a seed's epochs.
* ``nsga2``: the same space and training, the architectures chosen by Optuna's NSGA-II.

The baselines are Optuna samplers over the study's trials, so every strategy writes the
same kind of study and every report, plot and pick works on all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import Trial

from toolchain.search.evaluate import PhaseClock
from toolchain.search.forward import ForwardSearch, Plan, Step
from toolchain.search.space import suggest_genotype
from toolchain.store import ModelRecord

MAX_NEW_NODES = 2  # per cell: about as far as a CPU-scale forward search grows in an hour
# NSGA-II's default population of 50 is more models than a CPU search trains in an hour; with
# it the sampler would never leave its random first generation.
NSGA2_POPULATION = 4


class ScratchSearch(ForwardSearch):
    """Every model drawn from the space by the study's sampler and trained from scratch."""

    def next_step(self, finished: list[ModelRecord], everything: list[ModelRecord]) -> Step | None:
        return Step(None)

    def plan(
        self,
        step: Step,
        trial: Trial,
        model_seed: int,
        workdir: Path,
        clock: PhaseClock,
        label: str,
    ) -> Plan:
        genotype = suggest_genotype(
            trial,
            self.config.seed_widths,
            self.reductions(),
            self.config.mode,
            MAX_NEW_NODES,
            self.config.candidates.k,
        )
        sampler = type(self.study.study.sampler).__name__
        epochs = self.config.preset.seed_epochs
        return Plan(genotype, None, {"rule": "scratch", "sampler": sampler}, epochs)


@dataclass(frozen=True)
class Strategy:
    search: type[ForwardSearch]
    sampler: Callable[[int], optuna.samplers.BaseSampler] | None  # from a seed; None: Optuna's


STRATEGIES: dict[str, Strategy] = {
    "forward": Strategy(ForwardSearch, None),
    "random": Strategy(ScratchSearch, lambda seed: optuna.samplers.RandomSampler(seed=seed)),
    "nsga2": Strategy(
        ScratchSearch,
        lambda seed: optuna.samplers.NSGAIISampler(population_size=NSGA2_POPULATION, seed=seed),
    ),
}
