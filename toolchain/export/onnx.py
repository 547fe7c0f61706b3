"""ONNX export with a dynamic batch axis, the checker, and a parity test against PyTorch.

Parity runs on a batch size different from the export batch, so a batch axis that was
silently frozen during export shows up as a failure here rather than in deployment.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from toolchain.errors import ModelFailed

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 18
# fp32 through another kernel library with fused conv+BN: differences up to ~1e-4 of the
# output's magnitude are normal (seen on untrained 10-layer models); a wrong op or a frozen
# axis is off by the order of the output itself. 1e-3 sits well between the two.
PARITY_RTOL = 1e-3


@dataclass(frozen=True)
class ParityResult:
    batch_size: int
    max_abs_diff: float
    max_rel_diff: float  # max |onnx - torch| / max |torch|
    tolerance: float
    passed: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def export_onnx(
    model: nn.Module, input_shape: tuple[int, int, int], path: Path, batch_size: int
) -> None:
    """Export in eval mode with a symbolic batch axis, then run ``onnx.checker`` on the file.

    A model that cannot be exported or checked fails as a model (the search goes on).
    """
    model.eval()
    example = torch.zeros(batch_size, *input_shape)
    try:
        _export(model, example, path)
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the exporter raises many types; each means this model failed
        first_line = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise ModelFailed(f"ONNX export failed: {first_line}") from exc


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress chatter is not for users
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_shapes={"x": {0: batch}},
            external_data=False,
            dynamo=True,
            verbose=False,
        )


def check_parity(model: nn.Module, onnx_path: Path, images: torch.Tensor) -> ParityResult:
    """Compare ONNX Runtime (CPU, fp32) with PyTorch on ``images``; fail the model on mismatch."""
    import onnxruntime as ort

    model.eval()
    with torch.no_grad():
        expected = model(images).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
    max_abs = float(np.max(np.abs(actual - expected)))
    scale = max(float(np.max(np.abs(expected))), 1.0)
    result = ParityResult(
        batch_size=len(images),
        max_abs_diff=max_abs,
        max_rel_diff=max_abs / scale,
        tolerance=PARITY_RTOL * scale,
        passed=bool(actual.shape == expected.shape and max_abs <= PARITY_RTOL * scale),
    )
    if not result.passed:
        raise ModelFailed(
            f"ONNX output differs from PyTorch by {max_abs:.3g} (tolerance {result.tolerance:.3g}) "
            f"at batch {len(images)}",
            details={"parity": result.to_dict()},
        )
    return result
