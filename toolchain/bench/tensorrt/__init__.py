"""Native TensorRT latency backend (TensorRT 10 and 11, Python API). Importing this package
does not import TensorRT; only measuring does."""

from toolchain.bench.tensorrt.backend import TensorRTBackend

__all__ = ["TensorRTBackend"]
