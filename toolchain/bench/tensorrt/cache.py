"""Engines and timing caches kept between runs, per profile, in petri's cache folder.

``$PETRI_CACHE`` (default ``~/.cache/petri``) / ``tensorrt`` / profile name: ``timing.cache``
and one ``<key id>.engine`` with its ``<key id>.json`` per engine. An engine is returned only
when its stored key equals the one asked for; anything else is rebuilt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from toolchain.bench.tensorrt.engine import EngineKey

CACHE_ENV = "PETRI_CACHE"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "petri"))


class EngineCache:
    def __init__(self, profile_name: str, root: Path | None = None) -> None:
        self.folder = (root or cache_root()) / "tensorrt" / profile_name

    @property
    def timing_cache_path(self) -> Path:
        return self.folder / "timing.cache"

    def timing_cache(self) -> bytes:
        return self.timing_cache_path.read_bytes() if self.timing_cache_path.is_file() else b""

    def engine(self, key: EngineKey) -> bytes | None:
        engine, stored = self.folder / f"{key.id}.engine", self.folder / f"{key.id}.json"
        if not (engine.is_file() and stored.is_file()):
            return None
        if json.loads(stored.read_text()) != json.loads(json.dumps(key.to_dict())):
            return None  # a digest collision or a hand-edited file: rebuild
        return engine.read_bytes()

    def store(self, key: EngineKey, engine: bytes, timing_cache: bytes) -> None:
        """Written beside and then renamed, so a crash never leaves a half engine."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path, data in (
            (self.folder / f"{key.id}.engine", engine),
            (self.folder / f"{key.id}.json", json.dumps(key.to_dict(), indent=2).encode()),
            (self.timing_cache_path, timing_cache),
        ):
            partial = path.with_suffix(path.suffix + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
