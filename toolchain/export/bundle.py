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
            "location": meta.get("dataset_location"),  # absolute; None for digits
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
    model, stats, profile = meta["model"], meta["latency"]["stats"], meta["profile"]
    classes = meta["classes"]
    engine = meta.get("files", {}).get("engine")
    lines = [
        f"# Model {model['arch_id']} (study {model['study']}, trial {model['trial']})",
        "",
        f"An image classifier over {len(classes)} classes ({', '.join(classes[:10])}"
        f"{', ...' if len(classes) > 10 else ''}), {model['params']:,} parameters.",
        "",
        f"- accuracy: {meta['accuracy']['validation']:.2%} on validation, "
        f"{meta['accuracy']['test']:.2%} on the test split of `{meta['dataset']['spec']}`",
        f"- latency on `{profile['name']}` ({profile['backend']}, {profile['device']} "
        f"{meta['latency']['device_facts']['name']}, {profile['precision']}, batch "
        f"{profile['batch_size']}): median {stats['median']:.4f} ms, p90 {stats['p90']:.4f}, "
        f"p99 {stats['p99']:.4f} over {stats['n']} timed runs",
        "",
        "## Input",
        "",
        *[f"{i}. {step}" for i, step in enumerate(_input_steps(meta), start=1)],
        "",
        f"Output `{meta['output']['name']}`: {meta['output']['meaning']}; the class names, in "
        "order, are `classes` in metadata.json.",
        "",
        "## Files",
        "",
        f"- `{MODEL}`: the model (ONNX)",
        *([f"- `{engine}`: its TensorRT engine, for the profile's GPU only"] if engine else []),
        f"- `{METADATA}`: everything above, machine-readable, and the sha256 of the model files",
        "- `front.png`: this model (the star) among the others its search measured",
        "",
        *_usage(meta),
    ]
    return "\n".join(lines)


def _input_steps(meta: dict[str, Any]) -> list[str]:
    prep, shape = meta["preprocessing"], meta["input"]["shape"]
    return [
        f"decode the image and convert it to {prep['color_mode']} (PIL mode)",
        f"resize it to {shape[3]}x{shape[2]} (bilinear)"
        if prep["resize"]
        else f"it must be {shape[3]}x{shape[2]} pixels already (the model was trained without "
        "resizing)",
        f"divide the pixel values by {prep['scale']:g}",
        f"subtract the mean {_floats(prep['mean'])} and divide by the std {_floats(prep['std'])}, "
        "per channel",
        f"lay it out as {meta['input']['layout']} float32: input `{meta['input']['name']}` of "
        f"shape {shape}",
    ]


def _usage(meta: dict[str, Any]) -> list[str]:
    """With petri, and with ONNX Runtime, numpy and Pillow alone."""
    prep = meta["preprocessing"]
    where = (
        f"imagefolder:{meta['dataset']['location']}" if meta["dataset"]["location"] else "digits"
    )
    _, _, height, width = meta["input"]["shape"]
    resize = f".resize(({width}, {height}), Image.Resampling.BILINEAR)" if prep["resize"] else ""
    return [
        "## Use and check it",
        "",
        "With petri (`pip install -e .` in its checkout), from this folder:",
        "",
        "```sh",
        "petri predict . IMAGE...        # class and probability per image",
        f"petri verify . --dataset {where}",
        "```",
        "",
        "With ONNX Runtime, numpy and Pillow alone:",
        "",
        "```python",
        "import json, numpy as np, onnxruntime as ort",
        "from PIL import Image",
        "meta = json.load(open('metadata.json')); prep = meta['preprocessing']",
        f"img = Image.open('image.jpg').convert(prep['color_mode']){resize}",
        "x = np.asarray(img, np.float32).reshape(img.height, img.width, -1) / prep['scale']",
        "x = ((x - prep['mean']) / prep['std']).transpose(2, 0, 1)[None].astype(np.float32)",
        "session = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])",
        "logits = session.run(None, {meta['input']['name']: x})[0]",
        "print(meta['classes'][int(logits.argmax())])",
        "```",
        "",
    ]


def _floats(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
