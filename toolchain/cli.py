"""The ``petri`` command line: parse, call the library, print. Errors are mapped once, in main."""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from toolchain.errors import InputError, PetriError
from toolchain.presets import PRESETS

# The registries' names and defaults, here without importing torch (a test keeps them equal).
GROWTH_NAMES = ("petridish", "random")  # toolchain.search.growth.GROWTH_RULES
STRATEGY_NAMES = ("forward", "random", "nsga2")  # toolchain.search.strategies.STRATEGIES
MODES = ("macro", "cell")  # toolchain.arch.genotype.MODES
HEARTBEAT_S = 60  # toolchain.store.heartbeat.DEFAULT_INTERVAL_S
GRACE_INTERVALS = 10  # toolchain.store.heartbeat.GRACE_INTERVALS

if TYPE_CHECKING:
    from toolchain.store import SearchStudy

DEFAULT_STORAGE = "sqlite:///petri.db"
DEFAULT_STUDY = "petri"

storage_option = click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, help="Optuna storage URL."
)
study_option = click.option("--study", default=DEFAULT_STUDY, show_default=True, help="Study name.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
target_option = click.option(
    "--hw",
    "target",
    help="Read the models as measured on this profile (a name or YAML path; default: the "
    "search's own profile). `petri profile --study` measures them there.",
)
heartbeat_option = click.option(
    "--heartbeat",
    "heartbeat_s",
    type=click.IntRange(min=1),
    default=HEARTBEAT_S,
    show_default=True,
    help=f"Seconds between a running trial's heartbeats; after {GRACE_INTERVALS} missed ones "
    "another worker takes it over.",
)
artifacts_option = click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the study's files (ONNX, weights): a shared folder when workers run on "
    "several machines. Default: beside a SQLite file, else ./petri-artifacts.",
)


class FiniteRange(click.FloatRange):
    """click's FloatRange without nan and inf, which it lets through and no knob can use."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


budget_type = FiniteRange(min=0, min_open=True)


class SeedWidths(click.ParamType):
    """Comma-separated channel widths, e.g. ``8,16,24``."""

    name = "widths"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of widths, e.g. 8,16", param, ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="petri")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """petri: grow image classifiers, measure them on the target, ship the one that fits.

    \b
    petri search --dataset digits --hw cpu-ort --budget-ms 2 --study demo --max-models 5
    petri front  --study demo
    petri pick   --study demo --budget-ms 2
    petri export --study demo --budget-ms 2 --out deploy/
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.option(
    "--hw", default="cpu-ort", show_default=True, help="Profile name in hwprofiles/ or a YAML path."
)
@click.option(
    "--dataset", required=True, help="digits, or imagefolder:PATH (folder or .tar/.tar.gz)."
)
@click.option(
    "--subset", type=click.IntRange(min=1), help="Use N training images (stratified, seeded)."
)
@click.option(
    "--image-size", type=click.IntRange(min=4), help="Resize image-folder images to N x N."
)
@click.option(
    "--budget-ms", type=budget_type, required=True, help="Latency budget on the profile, in ms."
)
@storage_option
@study_option
@click.option(
    "--max-models", type=click.IntRange(min=1), required=True, help="Finished models in the study."
)
@click.option(
    "--time-limit",
    "time_limit_min",
    type=FiniteRange(min=0, min_open=True),
    help="Minutes; no new model after.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="cpu",
    show_default=True,
    help="Scale: smoke (seconds per model on digits, for tests), cpu (minutes on 2 cores), "
    "paper (original epochs); the --*-epochs, --batch-size, --lr and --val-fraction options "
    "override its values.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Same seed and data, same architectures.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGY_NAMES),
    default="forward",
    show_default=True,
    help="forward: grow children from parents (Petridish); random, nsga2: baselines that train "
    "architectures of the same space from scratch, drawn at random or by Optuna's NSGA-II.",
)
@click.option(
    "--growth",
    type=click.Choice(sorted(GROWTH_NAMES)),
    default="petridish",
    show_default=True,
    help="How a child is grown: petridish (weak-learner candidates) or random (baseline).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="macro",
    show_default=True,
    help="macro: each cell grows on its own; cell: one normal and one reduction template.",
)
@click.option(
    "--seeds",
    type=SeedWidths(),
    default="",
    help="Widths of the seed models that start the pool, e.g. 8,16 (default: the preset's).",
)
@click.option(
    "--budget-slack",
    type=FiniteRange(min=0),
    default=0.10,
    show_default=True,
    help="Models over budget x (1 + slack) are kept but never grown from.",
)
@click.option(
    "--eps",
    type=FiniteRange(min=0),
    default=0.025,
    show_default=True,
    help="Relative band above the lower hull whose models may be parents.",
)
@click.option("--seed-epochs", type=click.IntRange(min=1), help="Override: a seed's epochs.")
@click.option("--child-epochs", type=click.IntRange(min=1), help="Override: a child's epochs.")
@click.option(
    "--candidate-epochs", type=click.IntRange(min=1), help="Override: candidate-phase epochs."
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Override: batch size.")
@click.option("--lr", type=FiniteRange(0, 10, min_open=True), help="Override: SGD learning rate.")
@click.option(
    "--val-fraction",
    type=FiniteRange(0, 1, min_open=True, max_open=True),
    help="Override: share of the training images held out for validation.",
)
@click.option(
    "--keep", type=click.IntRange(min=1), default=3, show_default=True, help="Pairs kept per node."
)
@click.option(
    "--merge-points",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Cells grown per child.",
)
@click.option("--l1", type=FiniteRange(min=0), help="L1 weight on omega (default 1e-2 / pairs).")
@click.option(
    "--allow-other-device", is_flag=True, help="Measure even if this is not the profile's device."
)
@click.option(
    "--measure",
    type=click.Choice(["local", "remote"]),
    default="local",
    show_default=True,
    help="remote: the profile's device is elsewhere; `petri profile --study ... --worker` "
    "there measures the models, and parents are chosen on a fitted estimate meanwhile.",
)
@artifacts_option
@heartbeat_option
@click.option(
    "--resume",
    is_flag=True,
    help="Go on with a study whose workers have all died: their running models are failed at "
    "once instead of after the heartbeat grace period.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display, only the final line.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Also each phase's time, and each phase as a line."
)
def search(quiet: bool, verbose: bool, **options: Any) -> None:
    """Grow, train, export and measure models into a study.

    Running the same command again goes on with the same study: finished models are kept,
    and the search stops when --max-models models have finished. Several such commands on
    one --storage (PostgreSQL or MySQL for several machines) are workers of one search.

    \b
    petri search --dataset digits --hw cpu-ort --budget-ms 2 --study demo --max-models 5
    petri search --dataset imagefolder:../shared/data/cifar10-jpeg.tar.gz --subset 5000 \\
        --hw cpu-ort --budget-ms 1 --study c10 --max-models 8 --preset cpu
    petri search ... --storage postgresql://petri:***@db.example/petri --artifacts /mnt/petri
    petri search ... --hw orin-trt-fp16 --measure remote   # and on the Orin: petri profile
    """
    from toolchain.progress import progress_for
    from toolchain.search.runner import SearchRequest, run_search

    if quiet and verbose:
        raise click.UsageError("give -q (quiet) or -v (verbose), not both")
    request = SearchRequest(**options)
    progress = progress_for(sys.stderr, quiet, verbose)  # a live line on a terminal
    try:
        summary = run_search(request, progress)
    finally:
        progress.close()
    click.echo(
        f"search stopped: {summary.stop_reason}; this run finished {len(summary.trained)}, "
        f"failed {len(summary.failed)}"
    )


@cli.command()
@storage_option
@study_option
@target_option
@artifacts_option
@click.option(
    "--plot",
    "plots",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the front into this file: .png (matplotlib) or .html (plotly, interactive). "
    "May be given twice.",
)
@click.option(
    "--plot-history",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the front's hypervolume against models finished and wall time (.png).",
)
@click.option(
    "--budget-ms",
    type=budget_type,
    help="The budget the plots draw and pick under (default: the search's).",
)
@json_option
def front(
    storage: str,
    study: str,
    target: str | None,
    artifacts: Path | None,
    plots: tuple[Path, ...],
    plot_history: Path | None,
    budget_ms: float | None,
    as_json: bool,
) -> None:
    """Every model of a study, its Pareto front (validation error vs latency) marked with *.

    \b
    petri front --study demo
    petri front --study demo --json
    petri front --study demo --plot front.png --plot front.html --plot-history progress.png
    petri front --study demo --hw t4-trt-fp16 --plot t4.png   # the front measured on a T4
    """
    from toolchain.plots import check_plot_paths, write_plots

    check_plot_paths(list(plots), plot_history)  # before the study is read: a typo fails fast
    from toolchain.report import front_rows, front_table

    found = _load(storage, study, target, artifacts)
    rows = front_rows(found)
    written = write_plots(found, list(plots), plot_history, budget_ms)
    click.echo(json.dumps(rows, indent=2) if as_json else front_table(rows))
    for path in written:
        click.echo(f"wrote {path}", err=as_json)


@cli.command()
@storage_option
@study_option
@target_option
@artifacts_option
@click.option("--budget-ms", type=budget_type, required=True, help="Latency budget in ms.")
@json_option
def pick(
    storage: str,
    study: str,
    target: str | None,
    artifacts: Path | None,
    budget_ms: float,
    as_json: bool,
) -> None:
    """The most accurate model (on validation) that meets the budget. Exit 3 if none does.

    \b
    petri pick --study demo --budget-ms 2
    petri pick --study demo --budget-ms 2 --json
    """
    from toolchain.errors import NothingFitsError
    from toolchain.pareto import pick_under_budget
    from toolchain.report import pick_summary

    found = _load(storage, study, target, artifacts)
    try:
        record = pick_under_budget(found.finished(), budget_ms)
    except NothingFitsError as exc:
        if as_json:  # scripts get the closest models on stdout; the line still goes to stderr
            closest = [pick_summary(found, found.record(t), budget_ms) for t in exc.closest]
            click.echo(
                json.dumps({"fits": False, "budget_ms": budget_ms, "closest": closest}, indent=2)
            )
        raise
    summary = pick_summary(found, record, budget_ms)
    click.echo(json.dumps(summary, indent=2) if as_json else _pick_line(summary))


@cli.command()
@storage_option
@study_option
@target_option
@artifacts_option
@click.option("--trial", type=click.IntRange(min=0), help="Export this trial.")
@click.option("--budget-ms", type=budget_type, help="Export the pick under this budget.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="New folder for the bundle."
)
def export(
    storage: str,
    study: str,
    target: str | None,
    artifacts: Path | None,
    trial: int | None,
    budget_ms: float | None,
    out: Path,
) -> None:
    """Write a deployable bundle: model.onnx (and the engine for a TensorRT profile),
    metadata.json, front.png and a README.md for whoever deploys it.

    \b
    petri export --study demo --budget-ms 2 --out deploy/
    petri export --study demo --trial 3 --out deploy-t3/
    petri predict deploy/ cat.jpg          # then: use it
    petri verify deploy/ --dataset digits  # or check it
    """
    from toolchain.export.bundle import write_bundle
    from toolchain.pareto import pick_under_budget

    if (trial is None) == (budget_ms is None):
        raise click.UsageError("give exactly one of --trial N or --budget-ms X")
    found = _load(storage, study, target, artifacts)
    if trial is not None:
        record = found.record(trial)
        if not record.finished:
            raise InputError(f"trial {trial} did not finish ({record.fail_reason}); pick another")
    else:
        assert budget_ms is not None
        record = pick_under_budget(found.finished(), budget_ms)
    write_bundle(found, record, out, budget_ms)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    click.echo(f"wrote {out}/ ({files}) for trial {record.trial}")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def predict(bundle: Path, images: tuple[Path, ...], as_json: bool) -> None:
    """Class and probability of each image, from an exported bundle alone (ONNX Runtime,
    with the preprocessing recorded in its metadata.json).

    \b
    petri predict deploy/ cat.jpg dog.png
    petri predict deploy/ photos/*.jpg --json
    """
    from toolchain.export.deployed import Bundle

    predictions = Bundle(bundle).predict(list(images))
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in predictions], indent=2))
        return
    width = max(len(p.image) for p in predictions)
    for p in predictions:
        click.echo(f"{p.image:<{width}}  {p.label}  {p.probability:.3f}")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--dataset",
    help="Where the test images are now: digits or imagefolder:PATH (default: where the "
    "search read them).",
)
@click.option(
    "--accuracy-tolerance",
    type=FiniteRange(min=0),
    default=0.5,
    show_default=True,
    help="Allowed difference of test accuracy, in points.",
)
@click.option(
    "--latency-tolerance",
    type=FiniteRange(min=0),
    default=0.25,
    show_default=True,
    help="Allowed relative difference of the latency (0.25: within 25%).",
)
@json_option
def verify(
    bundle: Path,
    dataset: str | None,
    accuracy_tolerance: float,
    latency_tolerance: float,
    as_json: bool,
) -> None:
    """Recompute a bundle's test accuracy and latency from the bundle alone and compare them
    with the recorded ones. Exit 1 when one is off by more than its tolerance.

    \b
    petri verify deploy/ --dataset imagefolder:../shared/data/cifar10-jpeg.tar.gz
    petri verify deploy/ --dataset digits --latency-tolerance 0.5 --json
    """
    from toolchain.export.deployed import Bundle
    from toolchain.export.verify import verify_bundle

    checks = verify_bundle(Bundle(bundle), dataset, accuracy_tolerance, latency_tolerance)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for check in checks:
            click.echo(check.line)
    failed = [c.what for c in checks if not c.ok]
    if failed:
        raise PetriError(f"{bundle} does not reproduce its recorded {' and '.join(failed)}")


@cli.command()
@storage_option
@artifacts_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def dashboard(storage: str, artifacts: Path | None, host: str, port: int) -> None:
    """optuna-dashboard on a storage: every study, its trials, the Pareto view (an optional
    extra: pip install optuna-dashboard). Ctrl-C stops it.

    \b
    petri dashboard
    petri dashboard --storage postgresql://petri@db/petri --port 8081
    """
    from toolchain.dashboard import dashboard_server

    server = dashboard_server(storage, host, port, artifacts)
    click.echo(f"optuna-dashboard on http://{host}:{port}/dashboard (Ctrl-C stops it)", err=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the way to stop it, not an error
            click.echo("dashboard stopped", err=True)


@cli.command()
@storage_option
@json_option
def studies(storage: str, as_json: bool) -> None:
    """The studies in a storage, with their dataset, profile and model counts.

    \b
    petri studies
    petri studies --storage sqlite:///runs/petri.db --json
    """
    from toolchain.report import study_rows

    rows = study_rows(storage)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'study':<20} {'finished':>8} {'failed':>6}  {'strategy':<8}"
    click.echo(f"{header}  data, profile, budget")
    for row in rows:
        where = f"measurements of {row['source_study']!r} on" if row["source_study"] else "on"
        where = "measured remotely on" if row["measure"] == "remote" else where
        click.echo(
            f"{row['study']:<20} {row['finished']:>8} {row['failed']:>6}  {row['strategy']:<8}  "
            f"{row['dataset']} {where} {row['profile']}, budget {row['budget_ms']} ms"
        )


@cli.group()
def hw() -> None:
    """Hardware profiles: list, show, validate, detect."""


@hw.command("list")
def hw_list() -> None:
    """Profiles found by name ($PETRI_HWPROFILES, ./hwprofiles, the bundled ones).

    \b
    petri hw list
    """
    from toolchain.hw import list_profiles, load_profile

    for name, path in sorted(list_profiles().items()):
        click.echo(f"{name:<16} {load_profile(str(path)).description}  ({path})")


@hw.command("show")
@click.argument("name")
def hw_show(name: str) -> None:
    """Print a profile with every default filled in.

    \b
    petri hw show cpu-ort
    petri hw show ./my-target.yaml
    """
    import yaml

    from toolchain.hw import load_profile

    click.echo(yaml.safe_dump(load_profile(name).model_dump(mode="json"), sort_keys=False).rstrip())


@hw.command("validate")
@click.argument("path")
def hw_validate(path: str) -> None:
    """Check a profile file; exit 2 with the field that is wrong.

    \b
    petri hw validate ./my-target.yaml
    """
    from toolchain.hw import load_profile

    click.echo(f"{path}: valid profile {load_profile(path).name!r}")


@hw.command("detect")
@click.option("--gpu", type=click.IntRange(min=0), help="Which GPU (default: the first, if any).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here (a new file)."
)
def hw_detect(gpu: int | None, out: Path | None) -> None:
    """Write a profile for this machine: its first GPU (name, compute capability, memory,
    driver) or, without one, its CPU (model, cores). It expects that device when measuring.

    \b
    petri hw detect
    petri hw detect --out hwprofiles/lab-box.yaml
    """
    import yaml

    from toolchain.hw.device import profile_for_this_machine

    text = yaml.safe_dump(
        profile_for_this_machine(gpu).model_dump(mode="json"), sort_keys=False
    ).rstrip()
    if out is None:
        click.echo(text)
        return
    if not out.name:
        raise InputError("--out needs a file name, e.g. hwprofiles/lab.yaml")
    if out.exists():
        raise InputError(f"{out} exists; choose another --out or remove it")
    if not out.parent.is_dir():
        raise InputError(f"folder {out.parent} does not exist; create it or choose another --out")
    out.write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")


@cli.command("profile")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option(
    "--hw", default="cpu-ort", show_default=True, help="Profile name in hwprofiles/ or a YAML path."
)
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    metavar="NAME:1x3x32x32",
    help="An input's shape, for dynamic dimensions other than the batch (repeatable).",
)
@click.option(
    "--allow-other-device", is_flag=True, help="Measure even if this is not the profile's device."
)
@click.option(
    "--study",
    help="Measure the finished models of this search study instead of one file; the results "
    "go into its study for this profile (NAME@PROFILE).",
)
@storage_option
@artifacts_option
@click.option(
    "--worker", is_flag=True, help="With --study: keep measuring new models until stopped."
)
@click.option(
    "--poll",
    "poll_s",
    type=FiniteRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="With --worker: seconds between looks for new models.",
)
@heartbeat_option
@json_option
def profile_cmd(
    model: Path | None,
    hw: str,
    shapes: tuple[str, ...],
    allow_other_device: bool,
    study: str | None,
    storage: str,
    artifacts: Path | None,
    worker: bool,
    poll_s: float,
    heartbeat_s: int,
    as_json: bool,
) -> None:
    """Measure any ONNX file on a profile, like trtexec: warm-up excluded, the distribution.
    With --study, measure a search's models on this machine's target instead (a profiling
    worker; several may serve one target, and no model is measured twice).

    A dynamic batch dimension takes the profile's batch size; other dynamic dimensions need
    --shape.

    \b
    petri profile model.onnx --hw cpu-ort
    petri profile model.onnx --hw trt-fp16 --shape input:8x3x224x224 --json
    petri profile --storage postgresql://petri@db/petri --study c10 --hw orin-trt-fp16 --worker
    """
    if (model is None) == (study is None):
        raise click.UsageError("give an ONNX file or --study NAME (not both)")
    if model is not None:
        if worker:
            raise click.UsageError("--worker needs --study, not an ONNX file")
        _profile_file(model, hw, shapes, allow_other_device, as_json)
        return
    from toolchain.profiling import profile_study
    from toolchain.store.heartbeat import HeartbeatSettings

    assert study is not None
    if shapes:
        raise click.UsageError("--shape is for an ONNX file; a study's models take its input shape")
    summary = profile_study(
        storage,
        study,
        hw,
        artifacts=artifacts,
        allow_other_device=allow_other_device,
        heartbeat=HeartbeatSettings(heartbeat_s),
        poll_s=poll_s if worker else None,
        log=_progress,
    )
    result = {"measured": summary.measured, "failed": summary.failed}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"measured {len(summary.measured)} models, failed {len(summary.failed)}")


def _profile_file(
    model: Path, hw: str, shapes: tuple[str, ...], allow_other_device: bool, as_json: bool
) -> None:
    from toolchain.bench import Target
    from toolchain.bench.inputs import parse_shapes
    from toolchain.hw import load_profile
    from toolchain.report import latency_lines

    given = parse_shapes(shapes)
    target = Target.here(load_profile(hw), allow_other_device)
    record = target.measure_file(model, given)
    click.echo(json.dumps(record.to_dict(), indent=2) if as_json else latency_lines(model, record))


def _load(storage: str, study: str, target: str | None, artifacts: Path | None) -> SearchStudy:
    """The study of ``study``'s models as measured on ``target`` (a profile name or path)."""
    from toolchain.hw import load_profile
    from toolchain.store.targets import study_for_target

    profile = load_profile(target).name if target is not None else None
    return study_for_target(storage, study, profile, artifacts)


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _pick_line(s: dict[str, Any]) -> str:
    return (
        f"trial {s['trial']}: val {s['val_accuracy']:.2%}, test {s['test_accuracy']:.2%}, "
        f"{s['statistic']} {s['latency_ms']:.3f} ms (p90 {s['p90_ms']:.3f}, p99 {s['p99_ms']:.3f}) "
        f"<= budget {s['budget_ms']:g} ms, {s['params']:,} params, arch {s['arch_id']}"
    )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: one line per user error, with its exit code (DESIGN §7)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its info lines are noise here
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` closes the running trial like Ctrl-C
    debug = "--debug" in sys.argv[1:]
    try:
        code = cli.main(standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):  # click turns Ctrl-C into Abort
        click.echo("interrupted: finished models are kept; run the same command to go on", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, like every other user error
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PetriError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
