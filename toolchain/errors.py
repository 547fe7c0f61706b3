"""User-facing errors.

A :class:`PetriError` is something the user can fix; its message says what is wrong and how
to fix it, and the CLI prints it as one line with the error's exit code. Anything else that
escapes is a bug in petri and keeps its traceback.
"""

from __future__ import annotations


class PetriError(Exception):
    """An error the user can fix. ``exit_code`` follows DESIGN §7."""

    exit_code = 1


class InputError(PetriError):
    """Bad usage or input: a missing file, a malformed profile, a bad value (exit 2)."""

    exit_code = 2


class StorageError(InputError):
    """The storage URL cannot be opened, or the study is missing or inconsistent (exit 2)."""


class NothingFitsError(PetriError):
    """No finished model meets the latency budget (exit 3); ``closest`` are trial numbers."""

    exit_code = 3

    def __init__(self, message: str, closest: list[int] | None = None) -> None:
        super().__init__(message)
        self.closest = closest or []


class ModelFailed(Exception):
    """One model of a search failed (diverged, parity mismatch); the search goes on.

    Not a :class:`PetriError`: it never reaches the user as an exit, it becomes a failed
    trial with ``reason`` recorded on it.
    """

    def __init__(self, reason: str, details: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}
