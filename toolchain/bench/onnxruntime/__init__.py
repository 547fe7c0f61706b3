"""ONNX Runtime latency backend (CPU, CUDA and TensorRT execution providers)."""

from toolchain.bench.onnxruntime.backend import OnnxRuntimeBackend

__all__ = ["OnnxRuntimeBackend"]
