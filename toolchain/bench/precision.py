"""Reduced-precision models checked against fp32 (DESIGN §4): an fp16 engine that is fast
but wrong is no deployment. The check runs real images through the measured backend and
through ONNX Runtime's fp32 CPU reference, and compares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolchain.bench.target import Target

MIN_TOP1_AGREEMENT = 0.99  # below this the record says the reduced precision changed answers


def compare_outputs(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    finite = bool(np.isfinite(outputs).all())
    agreement = float((outputs.argmax(axis=1) == reference.argmax(axis=1)).mean())
    return {
        "images": int(len(reference)),
        "all_finite": finite,
        "top1_agreement": agreement,
        "max_abs_diff": float(np.abs(outputs - reference).max()) if finite else None,
        "passed": finite and agreement >= MIN_TOP1_AGREEMENT,
    }


def check_precision(
    target: Target, onnx_path: Path, images: np.ndarray, input_name: str
) -> dict[str, Any] | None:
    """None for fp32 profiles; else the comparison on ``images`` in the profile's batches."""
    profile = target.profile
    if profile.precision == "fp32":
        return None
    size = profile.batch_size
    whole = len(images) // size * size
    batches = [{input_name: images[i : i + size]} for i in range(0, whole, size)]
    outputs = np.concatenate(target.backend.infer(onnx_path, batches, profile, target.device))
    reference = np.concatenate(fp32_reference(onnx_path, batches))
    return {"precision": profile.precision, **compare_outputs(outputs, reference)}


def fp32_reference(onnx_path: Path, batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return [np.asarray(session.run(None, batch)[0]) for batch in batches]
