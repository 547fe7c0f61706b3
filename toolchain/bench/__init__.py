"""Latency backends, registered by name; see :class:`toolchain.bench.base.Backend`.

One folder per backend. :class:`Target` is what the rest of petri measures with.
"""

from toolchain.bench import onnxruntime as _onnxruntime  # noqa: F401  (registers itself)
from toolchain.bench import tensorrt as _tensorrt  # noqa: F401  (registers itself)
from toolchain.bench.base import BACKENDS, Backend, LatencyRecord, LatencyStats, create_backend
from toolchain.bench.target import Target

__all__ = ["BACKENDS", "Backend", "LatencyRecord", "LatencyStats", "Target", "create_backend"]
