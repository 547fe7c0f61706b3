"""What the reporting commands print: rows of the front table and the pick summary."""

from __future__ import annotations

from typing import Any

from toolchain.pareto import pareto_front
from toolchain.store import ModelRecord, SearchStudy


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
        "p90_ms": stats.get("p90"),
        "p99_ms": stats.get("p99"),
        "unstable": (r.latency or {}).get("unstable"),
        "params": r.params,
        "parent": r.parent,
        "arch_id": r.arch_id,
        "fail_reason": r.fail_reason,
    }


def front_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'':1} {'trial':>5}  {'val acc':>8}  {'test acc':>8}  {'latency ms':>10}  {'p99 ms':>8}  {'params':>9}  {'parent':>6}  arch"
    lines = [header]
    for row in rows:
        if row["state"] != "complete":
            lines.append(f"  {row['trial']:>5}  {row['state']}: {row['fail_reason'] or ''}")
            continue
        flag = "!" if row["unstable"] else ""
        lines.append(
            f"{'*' if row['front'] else ' '} {row['trial']:>5}  {row['val_accuracy']:>8.2%}  "
            f"{row['test_accuracy']:>8.2%}  {row['latency_ms']:>9.3f}{flag:1}  {row['p99_ms']:>8.3f}  "
            f"{row['params']:>9,}  {'' if row['parent'] is None else row['parent']:>6}  {row['arch_id']}"
        )
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
