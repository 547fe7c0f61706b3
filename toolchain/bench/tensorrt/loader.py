"""The one place petri imports TensorRT: the version it finds decides how engines are built.

Tests replace the module here (a fake named as such) to check our own branching; nothing
else in petri imports ``tensorrt``.
"""

from __future__ import annotations

from types import ModuleType

from toolchain.errors import InputError

SUPPORTED_MAJORS = (10, 11)
INSTALL_HINT = (
    "install it with `pip install -e '.[tensorrt]'` in petri's checkout (TensorRT 10 or 11 "
    "for your CUDA; on Jetson it comes with JetPack), or use the cuda-ort profile"
)


def load_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError as exc:
        raise InputError(f"TensorRT is not installed; {INSTALL_HINT}") from exc
    major_version(tensorrt)
    return tensorrt


def major_version(trt: ModuleType) -> int:
    """TensorRT's major version, refused unless petri knows how to build with it."""
    version = str(getattr(trt, "__version__", "unknown"))
    head = version.split(".")[0]
    major = int(head) if head.isdigit() else -1
    if major not in SUPPORTED_MAJORS:
        supported = " or ".join(map(str, SUPPORTED_MAJORS))
        raise InputError(
            f"TensorRT {version} is not supported; petri builds with TensorRT {supported}"
        )
    return major
