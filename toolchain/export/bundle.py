"""The deployable bundle: ``model.onnx`` and ``metadata.json`` describing how to use it.

The bundle is assembled in a temporary folder beside ``out`` and moved into place at the
end, so an interrupted export leaves no half-written bundle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx

from toolchain.errors import InputError, StorageError
from toolchain.export.onnx import OUTPUT_NAME
from toolchain.store import ModelRecord, SearchStudy

METADATA_VERSION = 1
DEPLOYABLES = {"engine": "model.engine", "engine_key": "engine_key.json"}  # artifact -> file


def bundle_metadata(study: SearchStudy, record: ModelRecord, onnx_path: Path) -> dict[str, Any]:
    meta = study.meta
    try:
        graph_input = onnx.load(str(onnx_path), load_external_data=False).graph.input[0]
    except Exception as exc:  # protobuf's DecodeError and friends: the stored file is damaged
        raise StorageError(
            f"the stored ONNX file of trial {record.trial} is damaged: {exc}"
        ) from exc
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    return {
        "format_version": METADATA_VERSION,
        "input": {"name": graph_input.name, "shape": dims, "dtype": "float32", "layout": "NCHW"},
        "output": {"name": OUTPUT_NAME, "meaning": "logits; softmax gives class probabilities"},
        "preprocessing": meta["preprocessing"],
        "classes": meta["classes"],
        "accuracy": {"validation": record.val_accuracy, "test": record.test_accuracy},
        "latency": record.latency,
        "profile": meta["profile"],
        "model": {
            "study": study.name,
            "trial": record.trial,
            "arch_id": record.arch_id,
            "genotype": record.architecture.to_dict(),
            "params": record.params,
            "flops": record.flops,
            "parity": record.parity,
        },
        "dataset": {
            "spec": meta["dataset"],
            "seed": meta["seed"],
            "subset": meta["subset"],
            "test_items": meta["test_items"],
        },
    }


def write_bundle(study: SearchStudy, record: ModelRecord, out: Path) -> Path:
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise InputError(f"{out} already exists and is not an empty folder; choose another --out")
    if not out.parent.is_dir():
        raise InputError(f"folder {out.parent} does not exist; create it or choose another --out")
    with tempfile.TemporaryDirectory(prefix=".petri-export-", dir=out.parent) as tmp:
        staging = Path(tmp) / "bundle"
        staging.mkdir()
        study.download(record, "onnx", staging / "model.onnx")
        metadata = bundle_metadata(study, record, staging / "model.onnx")
        for kind, name in DEPLOYABLES.items():  # a TensorRT profile's engine and its key
            if kind in record.artifacts:
                study.download(record, kind, staging / name)
                metadata.setdefault("files", {})[kind] = name
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        shutil.move(str(staging), str(out))
    return out
