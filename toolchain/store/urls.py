"""Storage URLs: masking passwords and finding where artifacts live by default."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from toolchain.errors import StorageError


def masked(url: str) -> str:
    """The URL as it may be printed or logged: never with its password.

    Covers ``user:pw@host`` (``@``, ``/`` and ``?`` inside the password too: everything up
    to the last ``@`` is masked, a host included when a query holds an ``@``) and query
    parameters such as ``?password=`` or ``?sslpassword=``, whether or not SQLAlchemy can
    parse the rest.
    """
    text = re.sub(r"://([^:/@?]*):.*@", r"://\1:***@", url)
    return re.sub(
        r"(?i)([?&][^=&]*(?:password|passwd|pwd|secret|token)[^=&]*=)[^&]*", r"\1***", text
    )


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, ``None`` for other databases."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is not a number
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
