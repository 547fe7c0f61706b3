"""Storage URLs: masking passwords and finding where artifacts live by default."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from toolchain.errors import StorageError


def masked(url: str) -> str:
    """The URL as it may be printed or logged: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, ``None`` for other databases."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(
            f"storage URL {masked(url)!r} is not a database URL; use e.g. sqlite:///petri.db"
        ) from exc
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise StorageError("an in-memory SQLite storage keeps nothing; use sqlite:///petri.db")
    return Path(parsed.database)


def default_artifact_dir(url: str) -> Path:
    """Beside the SQLite file (``petri.db`` -> ``petri-artifacts/``), else ./petri-artifacts."""
    db = sqlite_path(url)
    if db is None:
        return Path("petri-artifacts")
    return db.parent / f"{db.stem}-artifacts"
