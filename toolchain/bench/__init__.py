"""Latency backends, registered by name; see :class:`toolchain.bench.base.Backend`."""

from toolchain.bench import onnxruntime as _onnxruntime  # noqa: F401  (registers itself)
from toolchain.bench.base import BACKENDS, Backend, LatencyRecord, LatencyStats, create_backend

__all__ = ["BACKENDS", "Backend", "LatencyRecord", "LatencyStats", "create_backend"]
