"""Shared fixtures: real data from ../shared/data and the embedded digits, a fast profile."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy
import yaml
from sqlalchemy.engine import make_url

from toolchain.data import Dataset, load_dataset

REPO = Path(__file__).resolve().parent.parent
# The project's data lives in ../shared/data beside the checkout; PETRI_DATA points elsewhere.
SHARED_DATA = Path(os.environ.get("PETRI_DATA", REPO.parent / "shared" / "data"))
MINI_CIFAR = SHARED_DATA / "cifar10-jpeg-mini.tar.gz"


@pytest.fixture(scope="session")
def mini_cifar() -> Path:
    if not MINI_CIFAR.is_file():
        pytest.fail(
            f"{MINI_CIFAR} is missing: put ../shared/data beside the checkout or set PETRI_DATA"
        )
    return MINI_CIFAR


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, val_fraction=0.15)


def write_fast_profile(folder: Path) -> Path:
    """cpu-ort with a short timed region: real measurements, test-suite time."""
    profile = yaml.safe_load((REPO / "hwprofiles" / "cpu-ort.yaml").read_text())
    profile["name"] = "cpu-ort-fast"
    profile["timing"] = {
        "warmup_seconds": 0.0,
        "warmup_runs": 3,
        "min_seconds": 0.05,
        "min_runs": 30,
        "max_runs": 2000,
        "cv_limit": 0.15,
    }
    path = folder / "cpu-ort-fast.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


@pytest.fixture()
def fast_profile(tmp_path: Path) -> Path:
    return write_fast_profile(tmp_path)


# --- database servers -----------------------------------------------------------------------
# .ci/run names this machine's PostgreSQL and MariaDB; each test gets a database of its own.
SERVER_ENV = {"postgresql": "PETRI_TEST_POSTGRES", "mysql": "PETRI_TEST_MYSQL"}
REQUIRE_SERVERS = os.environ.get("PETRI_REQUIRE_SERVERS") == "1"


def _unavailable(reason: str) -> NoReturn:
    if REQUIRE_SERVERS:  # CI: a server that should be there and is not is a failure
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """The URL of a new, empty database on the ``kind`` server; dropped afterwards."""
    admin_url = os.environ.get(SERVER_ENV[kind])
    if not admin_url:
        _unavailable(f"{SERVER_ENV[kind]} is not set (e.g. {kind}://user@127.0.0.1/test)")
    name = f"petri_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(f"cannot reach the {kind} server of {SERVER_ENV[kind]}: {exc.orig}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}{force}")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One fresh storage of each kind petri supports: the conformance fixture."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'petri.db'}"
        return
    with fresh_database(request.param) as url:
        yield url


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    with fresh_database("postgresql") as url:
        yield url
