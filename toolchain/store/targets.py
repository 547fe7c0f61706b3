"""A search's models measured on other targets: one study per (search, target) (DESIGN §5).

Optuna does not let a finished trial change, so a latency measured after the search (by a
profiling worker on the target device) goes into a study of its own, ``<search>@<profile>``:
one trial per model, holding the model's record from the search study (genotype, accuracies,
artifacts), the measurement on that target, and ``source_trial``, the model's number in the
search. Every report reads such a study like a search study: a model keeps its number.

A search measured on its own profile (the default) is that profile's study itself; a remote
search (``--measure remote``) is measured into ``<search>@<its profile>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from toolchain.errors import InputError, StorageError
from toolchain.hw import HardwareProfile
from toolchain.store import records as attr
from toolchain.store.heartbeat import HeartbeatSettings
from toolchain.store.records import ModelRecord
from toolchain.store.study import SearchStudy, study_names
from toolchain.store.urls import masked

SEPARATOR = "@"


def target_study_name(search: str, profile: str) -> str:
    return f"{search}{SEPARATOR}{profile}"


def open_target_study(
    source: SearchStudy,
    url: str,
    profile: HardwareProfile,
    heartbeat: HeartbeatSettings | None = None,
) -> SearchStudy:
    """The study ``source``'s models are measured into on ``profile``, made on first use."""
    if source.meta.get("source_study") is not None:
        raise InputError(
            f"study {source.name!r} holds measurements of {source.meta['source_study']!r}; "
            "give the search's study to --study"
        )
    if profile.name == source.profile_name and not source.measures_remotely:
        raise InputError(
            f"study {source.name!r} was measured on {profile.name} by its own search; "
            "give another --hw, or search with --measure remote"
        )
    meta = {
        **source.meta,
        "profile": profile.model_dump(mode="json"),
        "measure": "local",
        "source_study": source.name,
    }
    name = target_study_name(source.name, profile.name)
    return SearchStudy.open_for_search(url, name, meta, source.artifact_dir, heartbeat)


def study_for_target(
    url: str, name: str, profile_name: str | None, artifacts: Path | None = None
) -> SearchStudy:
    """The study that holds ``name``'s models as measured on ``profile_name`` (default: the
    search's own profile), for ``front``, ``pick`` and ``export``."""
    source = SearchStudy.load(url, name, artifacts)
    wanted = profile_name or source.profile_name
    if source.meta.get("source_study") is not None or (
        wanted == source.profile_name and not source.measures_remotely
    ):
        if profile_name is not None and wanted != source.profile_name:
            raise InputError(f"study {name!r} is measured on {source.profile_name}, not {wanted}")
        return source
    target = target_study_name(name, wanted)
    if target not in study_names(source.storage):
        raise StorageError(
            f"no model of study {name!r} has been measured on {wanted} yet; run "
            f"`petri profile --storage {masked(url)} --study {name} --hw {wanted}` there"
        )
    return SearchStudy.load(url, target, source.artifact_dir)


def measured_latencies(source: SearchStudy) -> dict[int, float | None]:
    """Model number -> latency measured so far on a remote search's own profile; None for a
    model whose measurement failed for a reason of its own (it will not be measured)."""
    name = target_study_name(source.name, source.profile_name)
    try:
        study = optuna.load_study(study_name=name, storage=source.storage)
    except KeyError:  # no profiling worker has started yet
        return {}
    done: dict[int, float | None] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        model = t.user_attrs.get(attr.SOURCE_TRIAL)
        if model is None or t.user_attrs.get(attr.WITHDRAWN):
            continue
        if t.state == TrialState.COMPLETE:
            done[model] = t.user_attrs[attr.LATENCY_MS]
        elif attr.FAIL_REASON in t.user_attrs:
            done.setdefault(model, None)
    return done


def claim_measurement(trial: Trial, source_trial: FrozenTrial) -> None:
    """Say which model ``trial`` measures: it takes the model's record, its number last
    (``parent_trial`` is the claim :meth:`SearchStudy.numbers_before` waits for)."""
    model: dict[str, Any] = {
        key: value for key, value in source_trial.user_attrs.items() if key not in attr.MEASURED
    }
    trial.set_user_attr(attr.SOURCE_TRIAL, source_trial.number)
    for key, value in model.items():
        if key != attr.PARENT:
            trial.set_user_attr(key, value)
    trial.set_user_attr(attr.PARENT, model.get(attr.PARENT))


def is_taken(record: ModelRecord) -> bool:
    """Measured, being measured, or failed for a reason of its own (a measurement whose worker
    stopped beating is not: another worker takes the model)."""
    return record.state != TrialState.FAIL or record.fail_reason != attr.STALE_REASON


def unmeasured(source: SearchStudy, measured: SearchStudy) -> list[ModelRecord]:
    """The source's finished models that no worker has measured or is measuring, in order."""
    taken = {r.trial for r in measured.records() if is_taken(r)}
    return [r for r in source.finished() if r.trial not in taken]
