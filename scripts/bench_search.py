"""Petridish against its baselines at equal wall time (issue 3's benchmark).

Four arms search the same data with the same profile, budget and training settings, each for
the same wall-clock time, one after the other on an otherwise idle machine:

\b
  petridish      the forward search, children grown by the weak-learner candidate phase
  random-growth  the same loop, the new node's (input, op) pairs drawn at random
  random-arch    architectures of the same space drawn at random, trained from scratch
  nsga2          the same space and training, architectures chosen by Optuna's NSGA-II

Only models finished inside an arm's wall time count: the model running at the deadline
finishes, but is left out (the table shows it as "+ late"). For each arm: models finished,
the hypervolume of (validation error, latency) with the fixed reference point (error 1,
latency = the budget), and the best validation accuracy under the budget with that model's
test accuracy. Writes results.json and fronts.png to --out and prints a Markdown table.

\b
    python scripts/bench_search.py --out bench-search            # about 45 min on 2 cores
    python scripts/bench_search.py --minutes 2 --arms petridish,random-growth --out quick
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import click
import optuna
from optuna.trial import TrialState

from toolchain.cli import FiniteRange
from toolchain.errors import NothingFitsError, PetriError
from toolchain.pareto import hypervolume, pick_under_budget
from toolchain.presets import PRESETS
from toolchain.progress import Progress
from toolchain.search.runner import SearchRequest, run_search
from toolchain.store import ModelRecord, SearchStudy

REPO = Path(__file__).resolve().parent.parent
CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
ARMS = {
    "petridish": {"strategy": "forward", "growth": "petridish"},
    "random-growth": {"strategy": "forward", "growth": "random"},
    "random-arch": {"strategy": "random"},
    "nsga2": {"strategy": "nsga2"},
}
REFERENCE_ERROR = 1.0
UNLIMITED_MODELS = 100_000  # the wall time is what stops an arm


@dataclass(frozen=True)
class ArmResult:
    arm: str
    models: int  # finished inside the wall time
    late: int  # finished, but after the wall time (not counted)
    failed: int
    hypervolume: float
    best_trial: int | None  # most accurate on validation under the budget
    best_val: float | None
    best_test: float | None
    best_latency_ms: float | None
    wall_s: float  # the arm's whole run, the last (uncounted) model included
    points: list[tuple[float, float]]  # (latency ms, validation error) of the counted models


def within_wall_time(study: SearchStudy, minutes: float) -> list[ModelRecord]:
    """The finished models whose trial completed inside ``minutes`` of the arm's first trial."""
    trials = study.study.get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials if t.datetime_start)
    limit = timedelta(minutes=minutes)
    counted = {
        t.number
        for t in trials
        if t.state == TrialState.COMPLETE and t.datetime_complete - start <= limit
    }
    return [r for r in study.finished() if r.trial in counted]


def summarise(arm: str, study: SearchStudy, minutes: float, budget_ms: float) -> ArmResult:
    counted = within_wall_time(study, minutes)
    points = [(float(r.latency_ms), r.val_error) for r in counted]  # type: ignore[arg-type]
    trials = study.study.get_trials(deepcopy=False)
    wall = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    try:
        best: ModelRecord | None = pick_under_budget(counted, budget_ms)
    except NothingFitsError:
        best = None
    return ArmResult(
        arm=arm,
        models=len(counted),
        late=len(study.finished()) - len(counted),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        hypervolume=hypervolume([(err, lat) for lat, err in points], (REFERENCE_ERROR, budget_ms)),
        best_trial=best.trial if best else None,
        best_val=best.val_accuracy if best else None,
        best_test=best.test_accuracy if best else None,
        best_latency_ms=best.latency_ms if best else None,
        wall_s=wall.total_seconds(),
        points=points,
    )


def markdown_table(results: list[ArmResult]) -> str:
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x:.2%}"

    base = results[0]
    rows = [
        f"| arm | models (+ late) | failed | hypervolume | HV {base.arm} / HV arm | best val "
        "| its test | its ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ratio = f"{base.hypervolume / r.hypervolume:.2f}x" if r.hypervolume > 0 else "–"
        ms = "–" if r.best_latency_ms is None else f"{r.best_latency_ms:.3f}"
        rows.append(
            f"| {r.arm} | {r.models} (+{r.late}) | {r.failed} | {r.hypervolume:.4f} | {ratio} | "
            f"{pct(r.best_val)} | {pct(r.best_test)} | {ms} |"
        )
    return "\n".join(rows)


def plot_fronts(results: list[ArmResult], budget_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r, marker in zip(results, "osD^", strict=False):
        if not r.points:
            ax.plot([], [], marker, label=f"{r.arm}: no model inside the wall time")
            continue
        (line,) = ax.plot(*zip(*r.points, strict=True), marker, alpha=0.35, linestyle="none")
        front = sorted(p for p in r.points if not any(_dominates(q, p) for q in r.points))
        ax.step(*zip(*front, strict=True), where="post", color=line.get_color(), marker=marker,
                label=f"{r.arm} (HV {r.hypervolume:.4f})")  # fmt: skip
    ax.axvline(budget_ms, color="grey", linestyle="--", label=f"budget {budget_ms:g} ms")
    ax.set_xlabel("latency, median (ms)")
    ax.set_ylabel("validation error")
    ax.set_title("fronts at equal wall time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and a != b


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, help=__doc__)
@click.option("--dataset", default=f"imagefolder:{CIFAR}", show_default=True,
              help="What petri search takes: digits or imagefolder:PATH.")  # fmt: skip
@click.option("--subset", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Training images (stratified, seeded).")  # fmt: skip
@click.option("--hw", default="cpu-ort", show_default=True, help="Profile that measures.")
@click.option("--budget-ms", type=FiniteRange(min=0, min_open=True), default=0.3,
              show_default=True, help="The budget; also the reference latency.")  # fmt: skip
@click.option("--minutes", type=FiniteRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Wall time per arm.")  # fmt: skip
@click.option("--arms", default=",".join(ARMS), show_default=True, help="Comma-separated.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="cpu", show_default=True)
@click.option("--seed-epochs", type=click.IntRange(min=1), default=6, show_default=True,
              help="Epochs of any model trained from scratch.")  # fmt: skip
@click.option("--child-epochs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Epochs of a warm-started child.")  # fmt: skip
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="New folder for the storage, results.json and fronts.png.")  # fmt: skip
def main(
    dataset: str, subset: int, hw: str, budget_ms: float, minutes: float, arms: str, preset: str,
    seed_epochs: int, child_epochs: int, seed: int, out: Path,
) -> None:  # fmt: skip
    chosen = [a.strip() for a in arms.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in ARMS]
    if unknown or not chosen:
        named = ", ".join(unknown) or "(none)"
        raise click.UsageError(f"unknown arm {named}; available: {', '.join(ARMS)}")
    if len(set(chosen)) != len(chosen):
        raise click.UsageError(f"--arms {arms} names an arm twice")
    if out.exists():
        raise click.UsageError(f"{out} exists; give a new --out folder")
    out.mkdir(parents=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{out / 'bench.db'}"
    settings = dict(
        hw=hw, dataset=dataset, storage=storage, budget_ms=budget_ms, preset=preset, seed=seed,
        subset=subset, time_limit_min=minutes, seed_epochs=seed_epochs, child_epochs=child_epochs,
        max_models=UNLIMITED_MODELS,
    )  # fmt: skip
    results = []
    for arm in chosen:
        click.echo(f"== {arm}: {minutes:g} min", err=True)
        request = SearchRequest(study=arm, **settings, **ARMS[arm])  # type: ignore[arg-type]
        try:
            run_search(
                request,
                Progress(lambda text, arm=arm: click.echo(f"[{arm}] {text}", err=True, nl=False)),
            )
        except PetriError as exc:
            if not any(out.iterdir()):  # refused before anything was written
                out.rmdir()
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        results.append(summarise(arm, SearchStudy.load(storage, arm), minutes, budget_ms))
    (out / "results.json").write_text(
        json.dumps({"settings": settings, "arms": [asdict(r) for r in results]}, indent=2)
    )
    plot_fronts(results, budget_ms, out / "fronts.png")
    click.echo(markdown_table(results))


if __name__ == "__main__":
    try:
        main(standalone_mode=False)
    except click.UsageError as exc:  # one line, like petri's own errors
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
