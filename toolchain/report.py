"""What the reporting commands print: rows of the front table and the pick summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from toolchain.bench.base import LatencyRecord
from toolchain.pareto import pareto_front
from toolchain.store import ModelRecord, SearchStudy
from toolchain.store.study import open_storage, study_names


def front_rows(study: SearchStudy) -> list[dict[str, Any]]:
    """One row per trial, finished ones by latency first, then the failed with their reason."""
    records = study.records()
    on_front = {r.trial for r in pareto_front([r for r in records if r.finished])}
    finished = sorted((r for r in records if r.finished), key=lambda r: r.latency_ms or 0.0)
    others = [r for r in records if not r.finished]
    return [_row(r, r.trial in on_front) for r in finished + others]


def _row(r: ModelRecord, on_front: bool) -> dict[str, Any]:
    stats = (r.latency or {}).get("stats", {})
    return {
        "trial": r.trial,
        "state": r.state.name.lower(),
        "front": on_front,
        "val_accuracy": r.val_accuracy,
        "test_accuracy": r.test_accuracy,
        "latency_ms": r.latency_ms,
        "median_ci95_ms": stats.get("median_ci95"),
        "p90_ms": stats.get("p90"),
        "p99_ms": stats.get("p99"),
        "unstable": (r.latency or {}).get("unstable"),
        "params": r.params,
        "parent": r.parent,
        "arch_id": r.arch_id,
        "fail_reason": r.fail_reason,
    }


# (title, width, cell) of the front table; a cell renders one finished model's row.
COLUMNS: list[tuple[str, int, Any]] = [
    ("trial", 5, lambda r: f"{r['trial']}"),
    ("val acc", 8, lambda r: f"{r['val_accuracy']:.2%}"),
    ("test acc", 8, lambda r: f"{r['test_accuracy']:.2%}"),
    ("latency ms", 10, lambda r: f"{r['latency_ms']:.3f}{'!' if r['unstable'] else ''}"),
    ("p99 ms", 8, lambda r: f"{r['p99_ms']:.3f}"),
    ("params", 9, lambda r: f"{r['params']:,}"),
    ("parent", 6, lambda r: "" if r["parent"] is None else f"{r['parent']}"),
]


def front_table(rows: list[dict[str, Any]]) -> str:
    lines = ["  " + "  ".join(f"{title:>{width}}" for title, width, _ in COLUMNS) + "  arch"]
    for row in rows:
        if row["state"] != "complete":
            lines.append(f"  {row['trial']:>5}  {row['state']}: {row['fail_reason'] or ''}")
            continue
        cells = "  ".join(f"{cell(row):>{width}}" for _, width, cell in COLUMNS)
        lines.append(f"{'*' if row['front'] else ' '} {cells}  {row['arch_id']}")
    lines.append("* on the Pareto front of validation error and latency;  ! unstable measurement")
    return "\n".join(lines)


def pick_summary(study: SearchStudy, record: ModelRecord, budget_ms: float) -> dict[str, Any]:
    stats = (record.latency or {})["stats"]
    return {
        "trial": record.trial,
        "latency_ms": record.latency_ms,
        "statistic": study.meta["profile"]["budget_statistic"],
        "median_ms": stats["median"],
        "p90_ms": stats["p90"],
        "p99_ms": stats["p99"],
        "val_accuracy": record.val_accuracy,
        "test_accuracy": record.test_accuracy,
        "params": record.params,
        "budget_ms": budget_ms,
        "arch_id": record.arch_id,
        "profile": study.meta["profile"]["name"],
    }


def study_rows(url: str) -> list[dict[str, Any]]:
    rows = []
    for name in study_names(open_storage(url, must_exist=True)):
        study = SearchStudy.load(url, name)
        records = study.records()
        rows.append(
            {
                "study": name,
                "finished": sum(r.state == TrialState.COMPLETE for r in records),
                "failed": sum(r.state == TrialState.FAIL for r in records),
                "strategy": study.meta.get("strategy", "forward"),
                "dataset": study.meta.get("dataset"),
                "profile": study.meta.get("profile", {}).get("name"),
                "budget_ms": study.meta.get("budget_ms"),
                "measure": study.meta["measure"],
                "source_study": study.meta.get("source_study"),  # set: a target's study
            }
        )
    return rows


def latency_lines(model: Path, record: LatencyRecord) -> str:
    """What `petri profile` prints: the target, the settings, then the distribution."""
    s = record.stats
    shapes = ", ".join(
        f"{name} {'x'.join(map(str, shape))}" for name, shape in record.input_shapes.items()
    )
    lines = [
        f"{model.name} on {record.profile}: {record.backend}, {record.device} "
        f"({record.device_facts['name']}), {record.precision}, {shapes}",
        f"median {s.median:.4f} ms  (95% CI {s.median_ci95[0]:.4f} .. {s.median_ci95[1]:.4f})",
        f"mean {s.mean:.4f}  std {s.std:.4f}  p90 {s.p90:.4f}  p99 {s.p99:.4f}  "
        f"min {s.min:.4f}  max {s.max:.4f}  n {s.n}",
    ]
    for name, transfer in record.extra.get("transfers_ms", {}).items():
        lines.append(f"{name.replace('_', ' ')} (timed apart): median {transfer['median']:.4f} ms")
    if record.unstable:
        lines.append(
            f"unstable: the coefficient of variation stayed above {record.timing['cv_limit']} "
            "after a second measurement; measure again on a quiet machine"
        )
    return "\n".join(lines)
