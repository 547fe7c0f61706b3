"""Running a TensorRT engine: device buffers from torch, ``execute_async_v3`` on a stream,
CUDA events around each inference, optionally replayed as a CUDA graph.

torch is already petri's dependency and brings CUDA memory, streams, events and graphs, so
no second CUDA binding (pycuda, cuda-python) is needed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from toolchain.bench.base import Inputs


class EngineRunner:
    def __init__(
        self, trt: ModuleType, engine_bytes: bytes, inputs: Inputs, device_id: int, cuda_graph: bool
    ) -> None:
        import torch

        self.torch = torch
        self.device = torch.device("cuda", device_id)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_bytes)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [
            n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        ]
        self.output_names = [n for n in names if n not in self.input_names]
        for name in self.input_names:
            self.context.set_input_shape(name, inputs[name].shape)
        self.buffers = {name: self._allocate(trt, name) for name in names}
        for name, buffer in self.buffers.items():
            self.context.set_tensor_address(name, buffer.data_ptr())
        self.load(inputs)
        self.graph = self._capture() if cuda_graph else None

    def load(self, inputs: Inputs) -> None:
        """Copy ``inputs`` (the shapes the runner was made for) into the device buffers."""
        for name in self.input_names:
            host = self.torch.from_numpy(np.ascontiguousarray(inputs[name]))
            self.buffers[name].copy_(host)

    def _allocate(self, trt: ModuleType, name: str) -> Any:
        shape = tuple(self.context.get_tensor_shape(name))
        dtype = self.torch.from_numpy(
            np.empty(0, trt.nptype(self.engine.get_tensor_dtype(name)))
        ).dtype
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def _capture(self) -> Any:
        """One inference recorded as a CUDA graph (after one plain run, which TensorRT needs
        to finish its lazy set-up before capture)."""
        with self.torch.cuda.stream(self.stream):
            self._enqueue()
        self.stream.synchronize()
        graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.graph(graph, stream=self.stream):
            self._enqueue()
        return graph

    def run_once(self) -> float:
        """One inference, timed on the device: milliseconds between two CUDA events."""
        start = self.torch.cuda.Event(enable_timing=True)
        end = self.torch.cuda.Event(enable_timing=True)
        with self.torch.cuda.stream(self.stream):
            start.record(self.stream)
            if self.graph is not None:
                self.graph.replay()
            else:
                self._enqueue()
            end.record(self.stream)
        end.synchronize()
        return float(start.elapsed_time(end))

    def outputs(self) -> list[np.ndarray]:
        self.stream.synchronize()
        return [self.buffers[name].float().cpu().numpy() for name in self.output_names]
