"""Building TensorRT engines: what differs between TensorRT 10 and 11, the optimisation
profile for dynamic axes, the timing cache, and the key an engine is valid for.

An engine only runs where it was built: same GPU model and compute capability, same
TensorRT version, and (with our profiles) the shapes it was built for. :class:`EngineKey`
names all of them, so a stored engine is reused only when every part matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from toolchain.bench.tensorrt.fp16 import convert_to_fp16
from toolchain.bench.tensorrt.loader import major_version
from toolchain.errors import InputError
from toolchain.hw import DeviceFacts, HardwareProfile

Shape = tuple[int, ...]


@dataclass(frozen=True)
class EngineKey:
    gpu: str
    compute_capability: str
    tensorrt: str
    precision: str
    input_shapes: tuple[tuple[str, Shape], ...]
    model_sha256: str  # the ONNX file the engine was built from

    @classmethod
    def for_model(
        cls, trt: ModuleType, onnx_path: Path, precision: str, device: DeviceFacts,
        shapes: dict[str, Shape],
    ) -> EngineKey:  # fmt: skip
        return cls(
            gpu=device.name,
            compute_capability=device.compute_capability or "unknown",
            tensorrt=str(trt.__version__),
            precision=precision,
            input_shapes=tuple(sorted((n, tuple(s)) for n, s in shapes.items())),
            model_sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        )

    @property
    def id(self) -> str:
        """A file-name-safe digest of every field."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class BuildPlan:
    """How a precision is asked of a TensorRT version."""

    strongly_typed: bool  # the network takes its types from the graph
    fp16_flag: bool  # TensorRT 10's weakly typed FP16 builder flag
    convert_to_fp16: bool  # the graph itself converted to fp16 first


def build_plan(major: int, precision: str) -> BuildPlan:
    """TensorRT 11 removed the precision flags: fp16 there means an fp16 graph."""
    if major >= 11:
        return BuildPlan(strongly_typed=True, fp16_flag=False, convert_to_fp16=precision == "fp16")
    return BuildPlan(strongly_typed=False, fp16_flag=precision == "fp16", convert_to_fp16=False)


def graph_to_build(plan: BuildPlan, onnx_path: Path, workdir: Path) -> Path:
    """The ONNX file the parser gets: the model itself, or its fp16 conversion in ``workdir``."""
    if not plan.convert_to_fp16:
        return onnx_path
    return convert_to_fp16(onnx_path, workdir / f"{onnx_path.stem}-fp16.onnx")


def optimisation_shapes(
    dims: dict[str, tuple[int | str | None, ...]], shapes: dict[str, Shape]
) -> dict[str, tuple[Shape, Shape, Shape]]:
    """(min, opt, max) for every input with a dynamic axis.

    The engine is tuned for the measured shape (opt = max = it); a dynamic batch axis also
    accepts smaller batches down to 1, which is what a deployment usually sends. Other
    dynamic axes are fixed to the measured size, as trtexec --shapes does.
    """
    result = {}
    for name, declared in dims.items():
        if all(isinstance(d, int) for d in declared):
            continue
        shape = shapes[name]
        smallest = tuple(
            1 if i == 0 and not isinstance(d, int) else s
            for i, (d, s) in enumerate(zip(declared, shape, strict=True))
        )
        result[name] = (smallest, shape, shape)
    return result


def build_engine(
    trt: ModuleType,
    onnx_path: Path,
    profile: HardwareProfile,
    dims: dict[str, tuple[int | str | None, ...]],
    shapes: dict[str, Shape],
    timing_cache: bytes,
    workdir: Path,
) -> tuple[bytes, bytes]:
    """Serialised engine and the updated timing cache. Raises InputError when TensorRT
    cannot parse or build the model (an op it has no kernel for, say)."""
    plan = build_plan(major_version(trt), profile.precision)
    source = graph_to_build(plan, onnx_path, workdir)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(source.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or ["no detail"]
        raise InputError(f"TensorRT cannot parse {onnx_path.name}: {errors[0]}")
    config = builder.create_builder_config()
    config.builder_optimization_level = profile.builder_optimization_level
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    cache = config.create_timing_cache(timing_cache)
    config.set_timing_cache(cache, False)  # a cache from another TensorRT/GPU is refused
    ranges = optimisation_shapes(dims, shapes)
    if ranges:
        optimisation_profile = builder.create_optimization_profile()
        for name, (low, opt, high) in ranges.items():
            optimisation_profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(optimisation_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InputError(
            f"TensorRT could not build an engine for {onnx_path.name} (its log says why)"
        )
    return bytes(serialized), bytes(config.get_timing_cache().serialize())
