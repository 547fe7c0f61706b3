"""``petri dashboard``: optuna-dashboard on a petri storage, with the study's artifacts.

optuna-dashboard is an optional extra (``pip install -e '.[dashboard]'``). Its Pareto view
reads the two objectives by their metric names (``val_error``, ``latency_ms``) and its trial
table the user attributes, which petri keeps flat where a reader wants a figure at a glance.
"""

from __future__ import annotations

from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from toolchain.errors import InputError
from toolchain.store.study import open_storage
from toolchain.store.urls import default_artifact_dir, masked

INSTALL_HINT = (
    "pip install optuna-dashboard (or, in petri's checkout: pip install -e '.[dashboard]')"
)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser asks for several files at once; Ctrl-C stops them all


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """One line per HTTP request would bury what petri says."""


def dashboard_server(url: str, host: str, port: int, artifacts: Path | None = None) -> WSGIServer:
    """A server, bound and ready for ``serve_forever``, of optuna-dashboard on ``url``."""
    if not host:
        raise InputError("--host is empty; give an address, e.g. 127.0.0.1 (this machine only)")
    try:
        import optuna_dashboard
    except ImportError as exc:
        raise InputError(f"optuna-dashboard is not installed; {INSTALL_HINT}") from exc
    storage = open_storage(url, must_exist=True)
    folder = artifacts or default_artifact_dir(url)
    store = None
    if folder.is_dir():  # none yet: a study without models
        from optuna.artifacts import FileSystemArtifactStore

        store = FileSystemArtifactStore(str(folder))
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    try:
        return make_server(host, port, app, _ThreadingServer, _QuietHandler)
    except OSError as exc:  # EADDRINUSE, EACCES below 1024, an unknown host
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass --port with a free "
            f"port or --host with an address of this machine (storage {masked(url)})"
        ) from exc
