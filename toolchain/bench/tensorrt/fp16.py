"""fp16 ONNX graphs for TensorRT 11, whose strongly typed networks take precision from the
graph itself (TensorRT 10's FP16 builder flag is gone).

onnxconverter-common's converter is maintained with ONNX and keeps the graph's inputs and
outputs in fp32, so the engine is fed and read exactly like the fp32 one. NVIDIA's ModelOpt
AutoCast does the same job with per-layer accuracy checks, at the price of a much larger
dependency.
"""

from __future__ import annotations

from pathlib import Path

from toolchain.errors import InputError


def convert_to_fp16(onnx_path: Path, out_path: Path) -> Path:
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError as exc:
        raise InputError(
            "fp16 with TensorRT 11 converts the graph with onnxconverter-common, which is not "
            "installed; pip install -e '.[tensorrt]' in petri's checkout"
        ) from exc
    model = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(model, str(out_path))
    return out_path
