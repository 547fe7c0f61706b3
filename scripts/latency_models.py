"""Ten networks of the search space, from tiny to large, exported like the search exports
them: the shared test set of the latency benchmarks (bench_latency.py, gpu_check.py)."""

from __future__ import annotations

from pathlib import Path

from toolchain.arch.genotype import Edge, Node, seed_genotype
from toolchain.arch.network import Network, parameter_count
from toolchain.export.onnx import export_onnx
from toolchain.train import seed_everything

INPUT_SHAPE = (3, 32, 32)
WIDTHS = (4, 8, 16, 24, 32)
GROWN = Node((Edge(1, "sep_conv_3x3"), Edge(2, "dil_conv_5x5"), Edge(0, "max_pool_3x3")))


def make_models(folder: Path) -> list[tuple[str, Path, int]]:
    """(name, ONNX file, parameters) for each width, as a seed and with a node grown in
    every cell; random weights (latency does not depend on them)."""
    seed_everything(0)
    folder.mkdir(parents=True, exist_ok=True)
    models = []
    for width in WIDTHS:
        seed = seed_genotype(width, 2)
        grown = seed
        for cell in range(len(seed.cells)):
            grown = grown.with_node(cell, GROWN)
        for name, genotype in ((f"w{width}-seed", seed), (f"w{width}-grown", grown)):
            network = Network(genotype, INPUT_SHAPE[0], 10)
            path = folder / f"{name}.onnx"
            export_onnx(network, INPUT_SHAPE, path, batch_size=1)
            models.append((name, path, parameter_count(network)))
    return models
