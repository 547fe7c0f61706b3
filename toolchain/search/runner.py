"""From a search request (what the command line says) to a running :class:`ForwardSearch`.

Inputs are checked in the order that keeps storage untouched on bad input: the profile and
the preset, the storage URL's shape, the data; only then is the study created or reopened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from toolchain.bench import Target
from toolchain.data import Dataset, canonical_spec, load_dataset
from toolchain.errors import InputError
from toolchain.export.onnx import INPUT_NAME, OUTPUT_NAME
from toolchain.hw import HardwareProfile, load_profile
from toolchain.presets import Preset, get_preset, with_overrides
from toolchain.progress import Progress
from toolchain.search.candidates import CandidateConfig
from toolchain.search.evaluate import probe_images
from toolchain.search.forward import SearchConfig, SearchSummary
from toolchain.search.strategies import STRATEGIES
from toolchain.store import SearchStudy
from toolchain.store.heartbeat import DEFAULT_INTERVAL_S, HeartbeatSettings
from toolchain.store.study import check_reachable
from toolchain.store.targets import SEPARATOR


@dataclass(frozen=True)
class SearchRequest:
    hw: str
    dataset: str
    storage: str
    study: str
    budget_ms: float
    max_models: int
    preset: str = "cpu"
    seed: int = 0
    allow_other_device: bool = False
    artifacts: Path | None = None  # None: the storage's default folder
    heartbeat_s: int = DEFAULT_INTERVAL_S
    resume: bool = False  # every other worker is gone: fail their running models at once
    measure: str = "local"  # "remote": profiling workers measure (toolchain/profiling.py)
    subset: int | None = None
    image_size: int | None = None
    time_limit_min: float | None = None
    strategy: str = "forward"  # a name in STRATEGIES
    growth: str = "petridish"
    mode: str = "macro"
    seeds: tuple[int, ...] = ()  # seed widths; empty: the preset's one width
    budget_slack: float = 0.10
    eps: float = 0.025
    # Preset overrides; None keeps the preset's value.
    seed_epochs: int | None = None
    child_epochs: int | None = None
    candidate_epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    val_fraction: float | None = None
    # Candidate-phase knobs; l1 None takes DESIGN §3's default.
    keep: int = 3
    merge_points: int = 1
    l1: float | None = None


def dataset_location(spec: str) -> str | None:
    """The absolute path of an image folder or tarball (None for embedded data): a bundle's
    `petri verify` finds the test images from any working folder."""
    if not spec.startswith("imagefolder:"):
        return None
    return str(Path(spec.removeprefix("imagefolder:")).resolve())


def study_meta(
    request: SearchRequest, preset: Preset, profile: HardwareProfile, data: Dataset
) -> dict[str, object]:
    """What the study was searched with; checked on resume and written into every bundle."""
    return {
        "dataset": canonical_spec(request.dataset),
        "dataset_location": dataset_location(request.dataset),  # for bundles read elsewhere
        "subset": request.subset,
        "image_size": request.image_size,
        "seed": request.seed,
        "preset": request.preset,
        "training": asdict(preset),  # the preset with its command-line overrides
        "strategy": request.strategy,
        "growth": request.growth,
        "mode": request.mode,
        "seeds": list(request.seeds),
        "profile": profile.model_dump(mode="json"),
        "budget_ms": request.budget_ms,
        "measure": request.measure,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_shape": list(data.input_shape),
        "classes": list(data.classes),
        "preprocessing": asdict(data.preprocessing),
        "split_sizes": {
            "train": len(data.train.labels),
            "val": len(data.val.labels),
            "test": len(data.test.labels),
        },
        "test_items": list(data.test.items),
    }


def run_search(request: SearchRequest, progress: Progress) -> SearchSummary:
    profile, target, preset, seed_widths = check_request(request)
    progress.log(f"loading {request.dataset}")
    data = load_dataset(
        request.dataset,
        seed=request.seed,
        subset=request.subset,
        val_fraction=preset.val_fraction,
        image_size=request.image_size,
    )
    sizes = " / ".join(f"{len(s.labels)} {name}" for name, s in data.splits().items())
    progress.log(
        f"{len(data.classes)} classes, input {'x'.join(map(str, data.input_shape))}, {sizes}"
    )
    meta = study_meta(request, preset, profile, data)
    study = SearchStudy.open_for_search(
        request.storage,
        request.study,
        meta,
        artifacts=request.artifacts,
        heartbeat=HeartbeatSettings(request.heartbeat_s),
    )
    study.store_probe_images(probe_images(data))  # what profiling workers measure on
    if request.resume:
        taken_over = study.fail_running()
        if taken_over:
            progress.log(
                f"resuming: failed the running models of gone workers (trials {taken_over})"
            )
    previous_budget = study.update_budget(request.budget_ms)
    if previous_budget is not None:
        progress.log(
            f"budget changed from {previous_budget:g} ms to {request.budget_ms:g} ms for this study"
        )
    strategy = STRATEGIES[request.strategy]
    if strategy.sampler is not None:
        # Seeded by the trials so far, so a resumed search does not redraw its first models,
        # and by the strategy, so NSGA-II's random first generation is not random's draws.
        entropy = [request.seed, len(study.study.trials), *request.strategy.encode()]
        sampler_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        study.study.sampler = strategy.sampler(sampler_seed)
    config = search_config(request, preset, seed_widths, profile.batch_size)
    return strategy.search(study, data, target, config, progress).run()


def check_request(
    request: SearchRequest,
) -> tuple[HardwareProfile, Target | None, Preset, tuple[int, ...]]:
    """Everything that can be checked before the data is read: the storage stays untouched.

    A remote search (``--measure remote``) gets no Target: its profile's device is elsewhere.
    """
    if request.budget_ms <= 0:
        raise InputError(f"--budget-ms must be positive, got {request.budget_ms:g}")
    if request.max_models < 1:
        raise InputError(f"--max-models must be at least 1, got {request.max_models}")
    if SEPARATOR in request.study:
        raise InputError(
            f"--study {request.study!r}: '{SEPARATOR}' is kept for the studies of measurements "
            "on other targets (search@profile); choose a name without it"
        )
    if request.measure == "remote" and request.strategy != "forward":
        raise InputError(
            f"--measure remote needs --strategy forward: {request.strategy} chooses by latency "
            "as it trains, and a remote latency comes later"
        )
    profile = load_profile(request.hw)
    target = None
    if request.measure == "local":
        target = Target.here(profile, request.allow_other_device)
    preset = with_overrides(
        get_preset(request.preset),
        seed_epochs=request.seed_epochs,
        child_epochs=request.child_epochs,
        candidate_epochs=request.candidate_epochs,
        batch_size=request.batch_size,
        lr=request.lr,
        val_fraction=request.val_fraction,
    )
    seed_widths = request.seeds or (preset.channels,)
    if len(set(seed_widths)) != len(seed_widths) or min(seed_widths) < 2:
        raise InputError(f"--seeds must be distinct widths of at least 2, got {seed_widths}")
    if request.max_models < len(seed_widths):
        raise InputError(
            f"--max-models {request.max_models} is smaller than the {len(seed_widths)} seed "
            "models; raise it or give fewer --seeds"
        )
    check_reachable(request.storage)  # a malformed URL or a silent server, before the data
    return profile, target, preset, seed_widths


def search_config(
    request: SearchRequest, preset: Preset, seed_widths: tuple[int, ...], export_batch: int
) -> SearchConfig:
    return SearchConfig(
        export_batch=export_batch,
        max_models=request.max_models,
        budget_ms=request.budget_ms,
        seed=request.seed,
        preset=preset,
        time_limit_s=request.time_limit_min * 60 if request.time_limit_min else None,
        growth=request.growth,
        seed_widths=seed_widths,
        mode=request.mode,
        budget_slack=request.budget_slack,
        eps=request.eps,
        candidates=CandidateConfig(
            epochs=preset.candidate_epochs,
            k=request.keep,
            merge_points=request.merge_points,
            l1=request.l1,
            lr=preset.lr,
            batch_size=preset.batch_size,
        ),
    )
