"""A latency estimate that stands in while a model's measurement is pending (DESIGN §3).

When the target device measures models on its own schedule (a remote profiling worker), the
search must still place a new model on the (cost, error) plane to choose parents. The
estimate is a least-squares fit of measured latency on FLOPs and parameters (the weights read
per inference) over the study's measured models, with non-negative coefficients: more work
never makes a model faster. It is never used for the final pick.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression

from toolchain.store import ModelRecord

MIN_MEASURED = 3  # fewer measured models than this fit no line worth trusting


def _features(record: ModelRecord) -> list[float]:
    assert record.flops is not None and record.params is not None
    return [float(record.flops), float(record.params)]


def fit_latency(measured: list[ModelRecord]) -> LinearRegression | None:
    """The fit over models with a latency, FLOPs and parameters; None with too few of them."""
    usable = [r for r in measured if r.latency_ms is not None and r.flops and r.params]
    if len(usable) < MIN_MEASURED:
        return None
    fit = LinearRegression(positive=True)
    fit.fit(np.array([_features(r) for r in usable]), np.array([r.latency_ms for r in usable]))
    return fit


def costs(finished: list[ModelRecord]) -> list[float | None]:
    """Each model's measured latency, or its estimate while pending (None: not estimable)."""
    pending = [r for r in finished if r.latency_ms is None]
    fit = fit_latency(finished) if pending else None
    result: list[float | None] = []
    for r in finished:
        if r.latency_ms is not None:
            result.append(r.latency_ms)
        elif fit is not None and r.flops and r.params:
            result.append(float(fit.predict(np.array([_features(r)]))[0]))
        else:
            result.append(None)
    return result
