"""Several search workers on one PostgreSQL study (issue 5's benchmark).

For each worker count, a new database on the server, then that many `petri search` processes
started at once on one study (digits, the smoke preset, two seed widths), each until the
study has --max-models finished models. For each run:

\b
  models/min        finished models over the run's wall time (first start to last exit)
  lost              trials that are neither a finished model, a model failed for a reason
                    of its own, nor a withdrawn claim: running at the end, or stale (must be 0)
  blind twins       two running children of one parent where the later claim was made
                    before the earlier one: it could not know of it (must be 0)
  knowing twins     two running children of one parent, the later claim made knowing of
                    the earlier: what the sampling rule allows with few parents
  store s           the "store" phase of a model (attributes and artifacts), median
  overhead s        a model's trial time outside its own phases (claims, reads of the study,
                    waits for earlier claims), median

\b
    python scripts/bench_workers.py                       # 1, 2 and 4 workers: ~10 min
    python scripts/bench_workers.py --workers 1,2 --max-models 6
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import click
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from toolchain.store import SearchStudy
from toolchain.store import records as attr

PETRI = str(Path(sys.executable).parent / "petri")
MODEL_PHASES = ("growth", "train", "export", "parity", "measure", "store")


@dataclass(frozen=True)
class RunResult:
    workers: int
    finished: int
    wall_s: float
    lost: int
    blind_twins: int
    knowing_twins: int
    store_s: float
    overhead_s: float

    def row(self) -> str:
        per_minute = self.finished / (self.wall_s / 60)
        return (
            f"| {self.workers} | {self.finished} | {self.wall_s:.0f} | {per_minute:.2f} | "
            f"{self.lost} | {self.blind_twins} | {self.knowing_twins} | {self.store_s:.3f} | "
            f"{self.overhead_s:.3f} |"
        )


def new_database(server: str) -> tuple[str, str]:
    """(name, URL) of a new database on the server of ``server``."""
    name = f"petri_bench_{uuid.uuid4().hex[:10]}"
    with sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return name, make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    with sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


def run_workers(url: str, workers: int, max_models: int, folder: Path) -> float:
    """Start the workers at once, wait for all; the wall time. A failing worker stops it."""
    args = [
        PETRI, "search", "--dataset", "digits", "--hw", "cpu-ort", "--budget-ms", "5",
        "--storage", url, "--study", "bench", "--max-models", str(max_models),
        "--preset", "smoke", "--seeds", "8,16", "--seed", "0", "--quiet",
    ]  # fmt: skip
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            args, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise click.ClickException(f"a worker failed: {err.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def twins(trials: list[FrozenTrial]) -> tuple[int, int]:
    """(blind, knowing) pairs of children of one parent that were running at the same time."""
    children = [t for t in trials if t.user_attrs.get(attr.PARENT) is not None]
    blind = knowing = 0
    for a, b in itertools.combinations(sorted(children, key=lambda t: t.number), 2):
        if a.user_attrs[attr.PARENT] != b.user_attrs[attr.PARENT]:
            continue
        assert a.datetime_start and a.datetime_complete and b.datetime_start
        if not (b.datetime_start < a.datetime_complete):
            continue  # one after the other
        if b.user_attrs[attr.CLAIMED_AT] < a.user_attrs[attr.CLAIMED_AT]:
            blind += 1
        else:
            knowing += 1
    return blind, knowing


def summarise(url: str, workers: int, wall_s: float, folder: Path) -> RunResult:
    study = SearchStudy.load(url, "bench", folder / "petri-artifacts")
    trials = [t for t in study.study.get_trials() if not t.user_attrs.get(attr.WITHDRAWN)]
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    failed_for_a_reason = [t for t in trials if attr.FAIL_REASON in t.user_attrs]
    blind, knowing = twins(finished)
    overheads = []
    for t in finished:
        assert t.datetime_start and t.datetime_complete
        phases = t.user_attrs[attr.PHASE_SECONDS]
        inside = sum(phases.get(name, 0.0) for name in MODEL_PHASES)
        overheads.append((t.datetime_complete - t.datetime_start).total_seconds() - inside)
    return RunResult(
        workers=workers,
        finished=len(finished),
        wall_s=wall_s,
        lost=len(trials) - len(finished) - len(failed_for_a_reason),
        blind_twins=blind,
        knowing_twins=knowing,
        store_s=statistics.median(t.user_attrs[attr.PHASE_SECONDS]["store"] for t in finished),
        overhead_s=statistics.median(overheads),
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, help=__doc__)
@click.option(
    "--server",
    default="postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    show_default=True,
    help="A PostgreSQL URL whose user may create databases.",
)
@click.option("--workers", "counts", default="1,2,4", show_default=True, help="Worker counts.")
@click.option("--max-models", type=click.IntRange(min=2), default=12, show_default=True)
def main(server: str, counts: str, max_models: int) -> None:
    try:
        worker_counts = [int(n) for n in counts.split(",")]
    except ValueError as exc:
        raise click.UsageError(
            f"--workers {counts!r} is not a list of numbers, e.g. 1,2,4"
        ) from exc
    if min(worker_counts) < 1:
        raise click.UsageError("--workers must be at least 1 each")
    click.echo(
        "| workers | models | wall s | models/min | lost | blind twins | knowing twins "
        "| store s (median) | overhead s (median) |"
    )
    click.echo("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for workers in worker_counts:
        name, url = new_database(server)
        try:
            with TemporaryDirectory(prefix="petri-bench-") as tmp:
                wall_s = run_workers(url, workers, max_models, Path(tmp))
                click.echo(summarise(url, workers, wall_s, Path(tmp)).row())
        finally:
            drop_database(server, name)


if __name__ == "__main__":
    try:
        main(standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(1)
    except sqlalchemy.exc.OperationalError as exc:
        click.echo(f"error: cannot reach the server of --server: {exc.orig}", err=True)
        sys.exit(2)
