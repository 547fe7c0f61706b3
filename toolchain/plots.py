"""Pictures of a study (DESIGN §1, step 3).

A front picture shows every measured model as validation accuracy against latency on the
study's target, the Pareto front as a step line, the seed models and the picked model
marked, unstable measurements hollow, and the budget as a vertical line. It is described
once (:class:`FrontPlot`) and drawn by a renderer chosen by the file's suffix: PNG through
matplotlib, an interactive HTML page through plotly (hover shows each model's figures).

A history picture shows how the search went: the hypervolume of the front against models
finished and against wall time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain.errors import InputError, NothingFitsError

if TYPE_CHECKING:  # the study side imports torch; checking a path must stay instant
    from toolchain.store import ModelRecord, SearchStudy

PNG_SIZE_IN = (8.0, 5.0)
PNG_DPI = 100  # 800 x 500 pixels
REFERENCE_ERROR = 1.0  # the hypervolume's reference point: (error 1.0, the budget)
LABELLED_POINTS = 40  # trial numbers are written beside the points of smaller studies
LOG_SPAN = 10.0  # a latency axis spanning more than this factor is drawn in log scale


@dataclass(frozen=True)
class FrontPlot:
    """What a front picture shows, whichever renderer draws it."""

    models: list[ModelRecord]  # finished and measured, by latency
    front: list[ModelRecord]  # the Pareto front of validation error and latency, by latency
    budget_ms: float | None
    picked: int | None  # the trial marked as picked (None: none fits, or no budget)
    latency_label: str  # axis label: statistic, unit and target
    title: str

    @property
    def latency_span(self) -> tuple[float, float]:
        """The smallest and largest latency drawn, the budget's included."""
        values = [r.latency_ms or 0.0 for r in self.models] + [self.budget_ms or 0.0]
        values = [v for v in values if v > 0]
        return min(values), max(values)

    @property
    def log_latency(self) -> bool:
        """Whether the latency axis needs a log scale (a budget far from the models, say)."""
        low, high = self.latency_span
        return high / low > LOG_SPAN

    def log_range(self) -> list[float]:
        """plotly's log axis range, in log10: left alone, a vertical line stretches it."""
        low, high = self.latency_span
        return [math.log10(low / 1.25), math.log10(high * 1.25)]

    @property
    def seeds(self) -> list[ModelRecord]:
        return [r for r in self.models if r.parent is None]

    def unstable(self, record: ModelRecord) -> bool:
        return bool((record.latency or {}).get("unstable"))


def front_plot(
    study: SearchStudy, budget_ms: float | None = None, picked: int | None = None
) -> FrontPlot:
    """The study's front; ``budget_ms`` None draws the search's own budget. Unless a trial
    is given as ``picked``, the pick under the budget is marked."""
    from toolchain.pareto import pareto_front, pick_under_budget

    budget = budget_ms if budget_ms is not None else study.meta.get("budget_ms")
    measured = [r for r in study.finished() if r.latency_ms is not None]
    if not measured:
        raise InputError(
            f"study {study.name!r} has no measured model to plot yet; run `petri search` "
            "(or, for a remote target, `petri profile --study ...`) first"
        )
    if picked is None and budget is not None:
        try:
            picked = pick_under_budget(measured, budget).trial
        except NothingFitsError:
            picked = None
    profile = study.meta["profile"]
    return FrontPlot(
        models=sorted(measured, key=lambda r: r.latency_ms or 0.0),
        front=pareto_front(measured),
        budget_ms=budget,
        picked=picked,
        latency_label=f"latency, {profile['budget_statistic']} (ms) on {profile['name']}",
        title=f"study {study.name}: {len(measured)} model{'' if len(measured) == 1 else 's'}",
    )


def write_plots(
    study: SearchStudy,
    fronts: list[Path],
    history_path: Path | None = None,
    budget_ms: float | None = None,
) -> list[Path]:
    """The front into each of ``fronts`` and the history into ``history_path``; every path is
    checked before any file is written, so a bad one leaves nothing half done."""
    check_plot_paths(fronts, history_path)
    written = []
    if fronts:
        plot = front_plot(study, budget_ms)
        written = [write_front(plot, path) for path in fronts]
    if history_path is not None:
        written.append(write_history(study, history_path, budget_ms))
    return written


def check_plot_paths(fronts: list[Path], history_path: Path | None) -> None:
    """Raise InputError for the first path no plot can be written to."""
    for path in fronts:
        check_front_path(path)
    if history_path is not None:
        _check_folder(history_path)
        if history_path.suffix.lower() != ".png":
            raise InputError(f"--plot-history writes a PNG; name the file {history_path.stem}.png")


def check_front_path(path: Path) -> None:
    _check_folder(path)
    if path.suffix.lower() not in FRONT_RENDERERS:
        raise InputError(
            f"cannot write a plot to {path.name!r}: name the file with one of "
            f"{', '.join(sorted(FRONT_RENDERERS))}"
        )


def write_front(plot: FrontPlot, path: Path) -> Path:
    """Draw ``plot`` into ``path``; the suffix chooses the renderer (see FRONT_RENDERERS)."""
    check_front_path(path)
    with _replaced_atomically(path) as staging:
        FRONT_RENDERERS[path.suffix.lower()](plot, staging)
    return path


# --- PNG (matplotlib) ---------------------------------------------------------------------


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # files only: no screen is needed, none is touched
    from matplotlib import pyplot

    return pyplot


def _front_png(plot: FrontPlot, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=PNG_SIZE_IN, dpi=PNG_DPI)
    for unstable in (False, True):
        group = [r for r in plot.models if plot.unstable(r) == unstable]
        if group:
            ax.scatter(
                [r.latency_ms for r in group],
                [_pct(r.val_accuracy) for r in group],
                s=28,
                facecolors="none" if unstable else "tab:blue",
                edgecolors="tab:blue",
                label="model, unstable measurement" if unstable else "model",
                zorder=3,
            )
    ax.step(
        [r.latency_ms for r in plot.front],
        [_pct(r.val_accuracy) for r in plot.front],
        where="post",
        color="tab:orange",
        label="Pareto front",
        zorder=2,
    )
    ax.scatter(
        [r.latency_ms for r in plot.seeds],
        [_pct(r.val_accuracy) for r in plot.seeds],
        s=300,  # larger than the star, hollow: a seed that is also the pick shows both
        marker="s",
        facecolors="none",
        edgecolors="black",
        label="seed model",
        zorder=6,
    )
    for r in plot.models:
        if r.trial == plot.picked:
            ax.scatter(
                [r.latency_ms], [_pct(r.val_accuracy)], s=260, marker="*", color="tab:red",
                label=f"picked: trial {r.trial}", zorder=5,
            )  # fmt: skip
        if len(plot.models) <= LABELLED_POINTS:
            ax.annotate(str(r.trial), (r.latency_ms or 0.0, _pct(r.val_accuracy)), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")  # fmt: skip
    if plot.budget_ms is not None:
        ax.axvline(plot.budget_ms, color="tab:red", linestyle="--",
                   label=f"budget {plot.budget_ms:g} ms")  # fmt: skip
    if plot.log_latency:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1, 0.2, 0.5, 1, ...
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_xlabel(plot.latency_label + (", log scale" if plot.log_latency else ""))
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(plot.title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()  # the legend beside the axes, where it hides no point and no line
    fig.savefig(path, format="png")
    plt.close(fig)


# --- HTML (plotly) ------------------------------------------------------------------------


def hover_text(plot: FrontPlot, r: ModelRecord) -> str:
    """One model's hover box: trial, accuracies, latency with its tails, size."""
    stats = (r.latency or {}).get("stats", {})
    origin = "seed model" if r.parent is None else f"child of trial {r.parent}"
    lines = [
        f"trial {r.trial} ({origin})" + (", picked" if r.trial == plot.picked else ""),
        f"val acc {_pct(r.val_accuracy):.2f} %, test acc {_pct(r.test_accuracy):.2f} %",
        f"latency {r.latency_ms:.4f} ms (p90 {stats.get('p90', float('nan')):.4f}, "
        f"p99 {stats.get('p99', float('nan')):.4f})" + (", unstable" if plot.unstable(r) else ""),
        f"params {r.params:,}, arch {r.arch_id}",
    ]
    return "<br>".join(lines)


def _front_html(plot: FrontPlot, path: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()

    def points(group: list[ModelRecord], name: str, **style: object) -> None:
        fig.add_trace(
            go.Scatter(
                x=[r.latency_ms for r in group],
                y=[_pct(r.val_accuracy) for r in group],
                mode="markers",
                name=name,
                text=[hover_text(plot, r) for r in group],
                hoverinfo="text",
                **style,
            )
        )

    fig.add_trace(
        go.Scatter(
            x=[r.latency_ms for r in plot.front],
            y=[_pct(r.val_accuracy) for r in plot.front],
            mode="lines",
            line_shape="hv",
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    stable = [r for r in plot.models if not plot.unstable(r)]
    points(stable, "model", marker={"size": 9, "color": "#1f77b4"})
    points(
        [r for r in plot.models if plot.unstable(r)],
        "model, unstable measurement",
        marker={"size": 9, "color": "white", "line": {"color": "#1f77b4", "width": 2}},
    )
    points(plot.seeds, "seed model", marker={"size": 15, "symbol": "square-open", "color": "black"})
    points(
        [r for r in plot.models if r.trial == plot.picked],
        "picked",
        marker={"size": 18, "symbol": "star", "color": "#d62728"},
    )
    if plot.budget_ms is not None:
        fig.add_vline(
            x=plot.budget_ms,
            line_dash="dash",
            line_color="#d62728",
            annotation_text=f"budget {plot.budget_ms:g} ms",
        )
    fig.update_layout(
        title=plot.title,
        xaxis_title=plot.latency_label + (", log scale" if plot.log_latency else ""),
        xaxis_type="log" if plot.log_latency else "linear",
        xaxis_range=plot.log_range() if plot.log_latency else None,
        yaxis_title="validation accuracy (%)",
        template="plotly_white",
    )
    # The page carries plotly.js itself: it opens offline, on the machine it was written on.
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


FRONT_RENDERERS: dict[str, Callable[[FrontPlot, Path], None]] = {
    ".png": _front_png,
    ".html": _front_html,
}


# --- the search's progress ------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPoint:
    models: int  # models finished so far
    minutes: float  # wall time since the study's first model started
    hypervolume: float


def history(study: SearchStudy, budget_ms: float | None = None) -> list[HistoryPoint]:
    """The front's hypervolume after each finished model, in the order they finished.

    The reference point is (validation error 1.0, the budget): models over the budget add
    nothing, as in ``scripts/bench_search.py``.
    """
    from toolchain.pareto import hypervolume

    budget = budget_ms if budget_ms is not None else study.meta["budget_ms"]
    records = study.records()
    measured = [r for r in records if r.finished and r.latency_ms is not None]
    if not measured:
        raise InputError(f"study {study.name!r} has no measured model yet; nothing to plot")
    measured.sort(key=lambda r: r.completed_at)  # type: ignore[arg-type, return-value]
    start = min(r.started_at for r in records if r.started_at is not None)
    points = []
    for i, record in enumerate(measured, start=1):
        errors = [(r.val_error, r.latency_ms or 0.0) for r in measured[:i]]
        minutes = (record.completed_at - start).total_seconds() / 60  # type: ignore[operator]
        points.append(HistoryPoint(i, minutes, hypervolume(errors, (REFERENCE_ERROR, budget))))
    return points


def write_history(study: SearchStudy, path: Path, budget_ms: float | None = None) -> Path:
    budget = budget_ms if budget_ms is not None else study.meta["budget_ms"]
    points = history(study, budget)
    plt = _pyplot()
    fig, (by_models, by_time) = plt.subplots(1, 2, figsize=PNG_SIZE_IN, dpi=PNG_DPI, sharey=True)
    by_models.step([p.models for p in points], [p.hypervolume for p in points], where="post",
                   marker="o")  # fmt: skip
    by_models.set_xlabel("models finished")
    by_models.xaxis.get_major_locator().set_params(integer=True)
    by_models.set_ylabel(f"hypervolume of (val error, latency ms)\nup to (1.0, {budget:g} ms)")
    by_time.step([p.minutes for p in points], [p.hypervolume for p in points], where="post",
                 marker="o")  # fmt: skip
    by_time.set_xlabel("wall time (minutes)")
    for ax in (by_models, by_time):
        ax.grid(alpha=0.3)
    fig.suptitle(f"study {study.name}: progress of the front")
    fig.tight_layout()
    with _replaced_atomically(path) as staging:
        fig.savefig(staging, format="png")
    plt.close(fig)
    return path


# --- shared ---------------------------------------------------------------------------------


def _pct(fraction: float | None) -> float:
    return 100.0 * (fraction or 0.0)


def _check_folder(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{path} is a folder; name a file to write the plot into")
    if not path.parent.is_dir():
        raise InputError(f"folder {path.parent} does not exist; create it or choose another path")


@contextmanager
def _replaced_atomically(path: Path) -> Iterator[Path]:
    """A staging file beside ``path`` that replaces it only once it has been written whole."""
    staging = path.parent / f".petri-{os.getpid()}.partial"  # short: path's name may be long
    try:
        yield staging
        staging.replace(path)
    except OSError as exc:  # a read-only folder, a full disk
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        staging.unlink(missing_ok=True)
