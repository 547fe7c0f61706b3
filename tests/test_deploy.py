"""Seeing and shipping: front plots, the bundle, `petri predict` and `petri verify`, on one
real search over the mini CIFAR-10 tarball (one search for the whole module: it trains)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import write_fast_profile
from PIL import Image
from test_cli import PETRI, on_study, petri

from toolchain.data import load_dataset
from toolchain.search.evaluate import build_model
from toolchain.store import SearchStudy

TEST_IMAGES = 12


@pytest.fixture(scope="module")
def cifar_db(tmp_path_factory: pytest.TempPathFactory, mini_cifar: Path) -> Path:
    """A search of a seed and its child on the mini CIFAR-10 tarball; deploy/ is its bundle."""
    folder = tmp_path_factory.mktemp("cifar")
    db = folder / "p.db"
    search = petri(
        "search", "--dataset", f"imagefolder:{mini_cifar}", "--hw",
        str(write_fast_profile(folder)), "--budget-ms", "5", "--storage", f"sqlite:///{db}",
        "--study", "t", "--max-models", "2", "--subset", "500", "--preset", "smoke", "--seed", "0",
        cwd=folder,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    assert "exporting to ONNX" in search.stderr and "\x1b" not in search.stderr  # not a terminal
    exported = on_study(db, "export", "--budget-ms", "5", "--out", "deploy")
    assert exported.returncode == 0, exported.stderr
    return db


def test_front_plots_show_every_model(cifar_db: Path) -> None:
    run = on_study(
        cifar_db, "front", "--plot", "f.png", "--plot", "f.html", "--plot-history", "h.png"
    )
    assert run.returncode == 0, run.stderr
    with Image.open(cifar_db.parent / "f.png") as png:
        assert png.format == "PNG" and png.size == (800, 500)
        assert len(np.unique(np.asarray(png.convert("RGB")).reshape(-1, 3), axis=0)) > 5  # drawn
    with Image.open(cifar_db.parent / "h.png") as png:
        assert png.format == "PNG" and png.size == (800, 500)
    html = (cifar_db.parent / "f.html").read_text()
    assert "Plotly.newPlot" in html
    finished = SearchStudy.load(f"sqlite:///{cifar_db}", "t").finished()
    hovered = {int(n) for n in re.findall(r"trial (\d+) \((?:seed model|child of trial)", html)}
    assert hovered == {r.trial for r in finished}
    for r in finished:  # each hover box carries the model's tails and size
        p99 = r.latency["stats"]["p99"]  # type: ignore[index]
        assert f"p99 {p99:.4f}" in html and f"params {r.params:,}" in html


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--plot", "f.svg"), "name the file with one of .html, .png"),
        (("--plot", "nowhere/f.png"), "folder nowhere does not exist"),
        (("--plot-history", "h.html"), "--plot-history writes a PNG; name the file h.png"),
        (("--plot", "ok.png", "--plot", "f.svg"), "name the file with one of"),  # no ok.png
        (("--plot", "ok.png", "--plot-history", "no/h.png"), "folder no does not exist"),
    ],
)
def test_a_plot_that_cannot_be_written_is_one_line(
    cifar_db: Path, args: tuple[str, ...], words: str
) -> None:
    before = sorted(p.name for p in cifar_db.parent.iterdir())
    run = on_study(cifar_db, "front", *args)
    assert run.returncode == 2 and words in run.stderr and run.stderr.count("\n") == 1
    assert sorted(p.name for p in cifar_db.parent.iterdir()) == before


def test_the_bundle_holds_what_a_deployment_needs(cifar_db: Path) -> None:
    deploy = cifar_db.parent / "deploy"
    assert sorted(p.name for p in deploy.iterdir()) == [
        "README.md", "front.png", "metadata.json", "model.onnx",
    ]  # fmt: skip
    meta = json.loads((deploy / "metadata.json").read_text())
    readme = (deploy / "README.md").read_text()
    assert f"trial {meta['model']['trial']}" in readme and "convert it to RGB" in readme
    assert f"median {meta['latency']['stats']['median']:.4f} ms" in readme
    with Image.open(deploy / "front.png") as png:
        assert png.size == (800, 500)


def extract_test_images(tarball: Path, items: tuple[str, ...], folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar:
            if member.name in items:
                (folder / Path(member.name).name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return [folder / Path(item).name for item in items]


def test_predict_gives_the_classes_of_the_pytorch_model(cifar_db: Path, mini_cifar: Path) -> None:
    study = SearchStudy.load(f"sqlite:///{cifar_db}", "t")
    meta = json.loads((cifar_db.parent / "deploy" / "metadata.json").read_text())
    record = study.record(meta["model"]["trial"])
    data = load_dataset(f"imagefolder:{mini_cifar}", seed=0, val_fraction=0.15)
    study.download(record, "weights", cifar_db.parent / "w.pt")
    model = build_model(record.architecture, data, None, seed=0).eval()
    model.load_state_dict(torch.load(cifar_db.parent / "w.pt", weights_only=True))
    with torch.no_grad():
        expected = model(data.test.images[:TEST_IMAGES]).argmax(1).tolist()

    images = extract_test_images(mini_cifar, data.test.items[:TEST_IMAGES], cifar_db.parent / "im")
    run = petri("predict", "deploy", *map(str, images), "--json", cwd=cifar_db.parent)
    assert run.returncode == 0, run.stderr
    predicted = json.loads(run.stdout)
    assert [p["label"] for p in predicted] == [data.classes[k] for k in expected]
    assert all(0.0 < p["probability"] <= 1.0 for p in predicted)
    plain = petri("predict", "deploy", str(images[0]), cwd=cifar_db.parent)
    assert plain.stdout.split() == [str(images[0]), predicted[0]["label"], plain.stdout.split()[2]]


def test_predict_refuses_what_the_model_cannot_take(cifar_db: Path) -> None:
    folder = cifar_db.parent / "bad"
    folder.mkdir(exist_ok=True)
    Image.new("L", (32, 32)).save(folder / "grey.png")
    Image.new("RGB", (40, 32)).save(folder / "wide.png")
    (folder / "text.jpg").write_text("not an image")
    (cifar_db.parent / "empty").mkdir(exist_ok=True)
    cases = [
        (("deploy", "bad/grey.png"), "is a grey-scale image; the model takes 3-channel colour"),
        (("deploy", "bad/wide.png"), "is 40x32 pixels; the model takes 32x32"),
        (("deploy", "bad/text.jpg"), "is not a readable image file"),
        (("deploy", "bad/missing.png"), "image bad/missing.png does not exist"),
        (("empty", "bad/wide.png"), "has no metadata.json: it is not a petri bundle"),
    ]
    for args, words in cases:
        run = petri("predict", *args, cwd=cifar_db.parent)
        assert run.returncode == 2 and words in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1 and not run.stdout


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m.update(classes=5), "classes: Input should be a valid list"),
        (lambda m: m["preprocessing"].update(std=[0.2, 0.0, 0.2]), "preprocessing.std.1"),
        (lambda m: m["preprocessing"].update(mean=[0.5]), "mean and std need 3 values"),
        (lambda m: m["input"].update(shape=["batch", 1, 32, 32]), "input has 1 channels"),
        (lambda m: m.update(classes=m["classes"][:3]), "does not describe"),
        (lambda m: m.update(checksums=None), "checksums: Input should be a valid dictionary"),
    ],
)
def test_predict_refuses_damaged_metadata(cifar_db: Path, edit: Any, words: str) -> None:
    damaged = cifar_db.parent / f"damaged-{abs(hash(words))}"
    shutil.copytree(cifar_db.parent / "deploy", damaged)
    meta = json.loads((damaged / "metadata.json").read_text())
    edit(meta)
    (damaged / "metadata.json").write_text(json.dumps(meta))
    Image.new("RGB", (32, 32)).save(damaged / "x.png")
    run = petri("predict", damaged.name, f"{damaged.name}/x.png", cwd=cifar_db.parent)
    assert run.returncode == 2 and words in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_verify_reproduces_the_bundle_and_catches_a_swapped_model(
    cifar_db: Path, mini_cifar: Path
) -> None:
    deploy = cifar_db.parent / "deploy"
    # The latency tolerance is wide: the suite runs beside other processes on two cores.
    run = petri("verify", "deploy", "--json", "--latency-tolerance", "5", cwd=cifar_db.parent)
    assert run.returncode == 0, run.stderr
    accuracy, latency = json.loads(run.stdout)
    meta = json.loads((deploy / "metadata.json").read_text())
    assert accuracy["measured"] == pytest.approx(meta["accuracy"]["test"], abs=1e-6)
    assert latency["recorded"] == meta["latency"]["stats"]["median"] and latency["measured"] > 0

    swapped = cifar_db.parent / "swapped"
    swapped.mkdir()
    for name in ("metadata.json", "README.md"):
        (swapped / name).write_bytes((deploy / name).read_bytes())
    other = next(r for r in SearchStudy.load(f"sqlite:///{cifar_db}", "t").finished()
                 if r.trial != meta["model"]["trial"])  # fmt: skip
    SearchStudy.load(f"sqlite:///{cifar_db}", "t").download(other, "onnx", swapped / "model.onnx")
    bad = petri("verify", "swapped", "--dataset", f"imagefolder:{mini_cifar}", cwd=cifar_db.parent)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "swapped/model.onnx is not the file that was exported" in bad.stderr


# --- optuna-dashboard -------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def rendered_dom(url: str, profile: Path) -> str:
    """The page after its scripts ran, from headless Chromium (Debian's package)."""
    if CHROMIUM is None:
        reason = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("PETRI_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    page = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert page.returncode == 0, page.stderr[-2000:]
    return page.stdout


def test_dashboard_serves_the_study_to_a_browser(cifar_db: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [PETRI, "dashboard", "--storage", f"sqlite:///{cifar_db}", "--port", str(port)],
        cwd=cifar_db.parent, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stderr is not None
        announced = proc.stderr.readline()  # said once the socket listens: no polling needed
        summaries = json.loads(fetch(f"{base}/api/studies"))["study_summaries"]
        assert [s["study_name"] for s in summaries] == ["t"]
        study_id = summaries[0]["study_id"]
        detail = json.loads(fetch(f"{base}/api/studies/{study_id}?after=0"))
        assert detail["objective_names"] == ["val_error", "latency_ms"]
        complete = [t for t in detail["trials"] if t["state"] == "Complete"]
        attrs = {a["key"] for a in complete[0]["user_attrs"]}
        assert {"val_accuracy", "test_accuracy", "params", "latency_p99_ms", "arch_id"} <= attrs
        assert b"Optuna Dashboard" in fetch(f"{base}/dashboard")

        dom = rendered_dom(f"{base}/dashboard/studies/{study_id}", cifar_db.parent / "chromium")
        assert "latency_ms" in dom and "val_error" in dom  # the study page drew its objectives
    finally:
        proc.terminate()  # SIGTERM, like Ctrl-C: the way to stop it
        _, rest = proc.communicate(timeout=30)
    err = announced + rest
    assert f"on http://127.0.0.1:{port}/dashboard" in err and "dashboard stopped" in err
    assert proc.returncode == 0


def test_dashboard_on_a_port_in_use_is_one_line(cifar_db: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = petri("dashboard", "--storage", f"sqlite:///{cifar_db}", "--port", str(port),
                    cwd=cifar_db.parent)  # fmt: skip
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in run.stderr
