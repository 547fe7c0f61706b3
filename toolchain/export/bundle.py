"""The deployable bundle: ``model.onnx`` (and a TensorRT engine for a TensorRT profile),
``metadata.json`` describing how to use it, ``front.png`` showing where the model stands among
the study's, and a ``README.md`` for whoever deploys it.

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
from toolchain.export.deployed import METADATA, MODEL, sha256
from toolchain.export.metadata import BundleMetadata
from toolchain.export.onnx import OUTPUT_NAME
from toolchain.plots import front_plot, write_front
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


def write_bundle(
    study: SearchStudy, record: ModelRecord, out: Path, budget_ms: float | None = None
) -> Path:
    """Write the bundle of ``record`` into the new folder ``out``; ``budget_ms`` is drawn on
    its front (default: the search's budget)."""
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise InputError(f"{out} already exists and is not an empty folder; choose another --out")
    if not out.parent.is_dir():
        raise InputError(f"folder {out.parent} does not exist; create it or choose another --out")
    try:
        staging_root = tempfile.TemporaryDirectory(prefix=".petri-export-", dir=out.parent)
    except OSError as exc:  # a read-only folder
        raise InputError(f"cannot write into {out.parent}: {exc.strerror or exc}") from exc
    with staging_root as tmp:
        staging = Path(tmp) / "bundle"
        staging.mkdir()
        study.download(record, "onnx", staging / MODEL)
        metadata = bundle_metadata(study, record, staging / MODEL)
        for kind, name in DEPLOYABLES.items():  # a TensorRT profile's engine and its key
            if kind in record.artifacts:
                study.download(record, kind, staging / name)
                metadata.setdefault("files", {})[kind] = name
        deployed = [MODEL, *metadata.get("files", {}).values()]
        metadata["checksums"] = {name: sha256(staging / name) for name in deployed}
        write_front(front_plot(study, budget_ms, picked=record.trial), staging / "front.png")
        (staging / "README.md").write_text(deployer_readme(metadata))
        BundleMetadata.model_validate(metadata)  # what predict and verify will read back
        (staging / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        shutil.move(str(staging), str(out))
    return out


def deployer_readme(meta: dict[str, Any]) -> str:
    """A short page for whoever deploys the bundle: what goes in, what comes out, how fast."""
    prep, model, stats = meta["preprocessing"], meta["model"], meta["latency"]["stats"]
    profile = meta["profile"]
    steps = [
        f"decode the image and convert it to {prep['color_mode']} (PIL mode)",
        "resize it to {}x{} (bilinear)".format(*prep["resize"][::-1])
        if prep["resize"]
        else "keep its size (the model was trained on images of this size, no resize)",
        f"divide the pixel values by {prep['scale']:g}",
        f"subtract the mean {_floats(prep['mean'])} and divide by the std {_floats(prep['std'])}, "
        "per channel",
        f"lay it out as {meta['input']['layout']} float32: input `{meta['input']['name']}` of "
        f"shape {meta['input']['shape']}",
    ]
    engine = meta.get("files", {}).get("engine")
    lines = [
        f"# Model {model['arch_id']} (study {model['study']}, trial {model['trial']})",
        "",
        f"An image classifier over {len(meta['classes'])} classes "
        f"({', '.join(meta['classes'][:10])}{', ...' if len(meta['classes']) > 10 else ''}), "
        f"{model['params']:,} parameters.",
        "",
        f"- accuracy: {meta['accuracy']['validation']:.2%} on validation, "
        f"{meta['accuracy']['test']:.2%} on the test split of `{meta['dataset']['spec']}`",
        f"- latency on `{profile['name']}` ({profile['backend']}, {profile['device']}, "
        f"{profile['precision']}, batch {profile['batch_size']}): median {stats['median']:.4f} ms, "
        f"p90 {stats['p90']:.4f}, p99 {stats['p99']:.4f} over {stats['n']} timed runs",
        "",
        "## Input",
        "",
        *[f"{i}. {step}" for i, step in enumerate(steps, start=1)],
        "",
        f"Output `{meta['output']['name']}`: {meta['output']['meaning']}; the class names, in "
        "order, are `classes` in metadata.json.",
        "",
        "## Files",
        "",
        f"- `{MODEL}`: the model (ONNX)",
        *([f"- `{engine}`: its TensorRT engine, for the profile's GPU only"] if engine else []),
        f"- `{METADATA}`: everything above, machine-readable, with the files' sha256",
        "- `front.png`: this model (the star) among the others its search measured",
        "",
        "## Check and use it",
        "",
        "```sh",
        "petri predict . IMAGE...                      # class and probability per image",
        f"petri verify . --dataset {meta['dataset']['spec']}   # accuracy and latency again",
        "```",
        "",
    ]
    return "\n".join(lines)


def _floats(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
