"""FakeTensorRT: a stand-in for the ``tensorrt`` module at petri's import boundary.

Only for testing petri's own branching on the TensorRT version (which flags, which network,
which graph goes to the parser, which optimisation profile). It records what petri asks of
it and builds nothing; real engines are checked by scripts/gpu_check.py on a GPU.
"""

from __future__ import annotations

import enum
from types import ModuleType
from typing import Any


class FakeTensorRT(ModuleType):
    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    class NetworkDefinitionCreationFlag(enum.IntEnum):
        STRONGLY_TYPED = 5

    class BuilderFlag(enum.Enum):
        FP16 = "fp16"

    def __init__(self, version: str) -> None:
        super().__init__("tensorrt")
        self.__version__ = version
        self.calls: list[tuple[str, Any]] = []
        fake = self

        class OnnxParser:
            num_errors = 0

            def __init__(self, network: object, logger: object) -> None:
                pass

            def parse(self, data: bytes) -> bool:
                fake.calls.append(("parse", data))
                return True

        class Profile:
            def set_shape(self, name: str, low: tuple, opt: tuple, high: tuple) -> None:
                fake.calls.append(("set_shape", (name, tuple(low), tuple(opt), tuple(high))))

        class Cache:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def serialize(self) -> bytes:
                return self.data + b"+tuned"

        class Config:
            builder_optimization_level = 3

            def set_flag(self, flag: object) -> None:
                fake.calls.append(("set_flag", flag))

            def create_timing_cache(self, data: bytes) -> Cache:
                self.cache = Cache(data)
                return self.cache

            def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> None:
                fake.calls.append(("timing_cache", cache.data))

            def get_timing_cache(self) -> Cache:
                return self.cache

            def add_optimization_profile(self, profile: Profile) -> None:
                fake.calls.append(("add_optimization_profile", None))

        class Builder:
            def __init__(self, logger: object) -> None:
                pass

            def create_network(self, flags: int) -> object:
                fake.calls.append(("create_network", flags))
                return object()

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: object, config: Config) -> bytes:
                fake.calls.append(("build", config.builder_optimization_level))
                return b"engine"

        self.OnnxParser = OnnxParser
        self.Builder = Builder

    def called(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]
