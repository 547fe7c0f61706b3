"""Growth rules: how a child genotype is made from its parent.

This is the first rule (random weak learner): one new node with one (input, op) edge at a
cell's output, chosen uniformly. The Petridish candidate phase replaces the choice later;
the shape of a growth step (a cell index and a new node) stays the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from toolchain.arch.genotype import CELL_INPUTS, Edge, Genotype, Node
from toolchain.arch.ops import OPS


@dataclass(frozen=True)
class Growth:
    cell: int
    node: Node

    def apply(self, parent: Genotype) -> Genotype:
        return parent.with_cell(self.cell, parent.cells[self.cell].with_node(self.node))

    def to_dict(self) -> dict[str, object]:
        return {"rule": "random", **asdict(self)}


def random_growth(parent: Genotype, rng: np.random.Generator) -> Growth:
    cell_index = int(rng.integers(len(parent.cells)))
    cell = parent.cells[cell_index]
    source = int(rng.integers(CELL_INPUTS + len(cell.nodes)))  # a cell input or any node
    op = sorted(OPS)[int(rng.integers(len(OPS)))]
    return Growth(cell_index, Node((Edge(source, op),)))
