"""The architecture as data: JSON-serialisable, hashable, independent of the dataset.

A network is a stem, then a sequence of cells; a reduction cell halves the resolution and
doubles the channels. A cell has two inputs (the outputs of the two previous cells, index 0
and 1) and a list of nodes; node ``j`` has index ``2 + j`` as an input to later nodes. A node
sums nothing: with one edge it is that edge's op, with several (a Petridish merge) the edges
are concatenated and mixed by a 1x1 conv. The cell's output is node 0 plus each later node
times its own gate, so that a node added by growth can start at zero.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from toolchain.arch.ops import OPS

CELL_INPUTS = 2  # the outputs of the two previous cells


@dataclass(frozen=True)
class Edge:
    input: int
    op: str


@dataclass(frozen=True)
class Node:
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class Cell:
    reduction: bool
    nodes: tuple[Node, ...]


MODES = ("macro", "cell")


@dataclass(frozen=True)
class Genotype:
    """``macro``: every cell grows on its own. ``cell``: every normal cell repeats one normal
    template and every reduction cell one reduction template (kept identical by
    :meth:`with_node`, checked by :func:`validate`); weights are still per cell."""

    channels: int  # channels of the first stage; doubled at every reduction
    cells: tuple[Cell, ...] = field(default_factory=tuple)
    mode: str = "macro"

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "mode": self.mode,
            "cells": [
                {
                    "reduction": cell.reduction,
                    "nodes": [[[e.input, e.op] for e in node.edges] for node in cell.nodes],
                }
                for cell in self.cells
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        cells = tuple(
            Cell(
                bool(c["reduction"]),
                tuple(Node(tuple(Edge(int(i), str(op)) for i, op in n)) for n in c["nodes"]),
            )
            for c in data["cells"]
        )
        return cls(int(data["channels"]), cells, str(data.get("mode", "macro")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def arch_id(self) -> str:
        """Stable across processes and machines: a hash of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def with_node(self, cell: int, node: Node) -> Genotype:
        """This genotype with ``node`` appended to cell ``cell``: one growth step.

        In cell mode the node joins the cell's template, so every cell of its type gets it.
        """
        grown = self.template_cells(cell)
        cells = tuple(
            Cell(c.reduction, c.nodes + (node,)) if i in grown else c
            for i, c in enumerate(self.cells)
        )
        return Genotype(self.channels, cells, self.mode)

    def template_cells(self, cell: int) -> list[int]:
        """The cells that change with cell ``cell``: itself, or in cell mode all of its type."""
        if self.mode == "macro":
            return [cell]
        kind = self.cells[cell].reduction
        return [i for i, c in enumerate(self.cells) if c.reduction == kind]


def validate(genotype: Genotype) -> None:
    """Reject genotypes the builder cannot build, with the place that is wrong."""
    if genotype.channels < 2:
        raise ValueError(f"channels must be at least 2, got {genotype.channels}")
    if not genotype.cells:
        raise ValueError("a genotype needs at least one cell")
    if genotype.mode not in MODES:
        raise ValueError(f"unknown mode {genotype.mode!r}; available: {', '.join(MODES)}")
    if genotype.mode == "cell":
        for kind in (False, True):
            templates = {c.nodes for c in genotype.cells if c.reduction == kind}
            if len(templates) > 1:
                name = "reduction" if kind else "normal"
                raise ValueError(
                    f"cell mode: the {name} cells differ; they must share one template"
                )
    for c, cell in enumerate(genotype.cells):
        if not cell.nodes:
            raise ValueError(f"cell {c} has no nodes")
        for j, node in enumerate(cell.nodes):
            if not node.edges:
                raise ValueError(f"cell {c} node {j} has no edges")
            for edge in node.edges:
                if edge.op not in OPS:
                    raise ValueError(f"cell {c} node {j}: unknown op {edge.op!r}")
                if not 0 <= edge.input < CELL_INPUTS + j:
                    raise ValueError(
                        f"cell {c} node {j}: input {edge.input} is not an earlier node"
                    )


def seed_genotype(channels: int, reductions: int, mode: str = "macro") -> Genotype:
    """DESIGN §3 seed: each cell a single sep-conv edge from the previous cell.

    Macro: one cell per stage (the first normal, then reductions). Cell: every stage after the
    first starts with a reduction cell and has a normal cell too, so that both templates
    repeat and a template change shows in several places.
    """
    first = Node((Edge(1, "sep_conv_3x3"),))
    per_reduction = [True] if mode == "macro" else [True, False]
    kinds = [False] + per_reduction * reductions
    return Genotype(channels, tuple(Cell(kind, (first,)) for kind in kinds), mode)
