"""The forward search's space as Optuna parameters, for the baselines trained from scratch.

Growth appends nodes to the seed's cells, each node a few (input, op) pairs. The same space,
written as parameters: per cell (per template in cell mode) a number of new nodes, and per
node slot its pairs. Every parameter is suggested on every trial, used or not, so the space
is fixed: a dynamic space would hide the unused genes from NSGA-II's crossover and mutation.
"""

from __future__ import annotations

import optuna

from toolchain.arch.genotype import CELL_INPUTS, Edge, Genotype, Node, seed_genotype
from toolchain.arch.ops import OPS

NO_EDGE = "none"  # an edge slot left empty (never the node's first)


def suggest_genotype(
    trial: optuna.Trial,
    seed_widths: tuple[int, ...],
    reductions: int,
    mode: str,
    max_new_nodes: int,
    max_edges: int,
) -> Genotype:
    """An architecture of the search space, its choices drawn by ``trial``'s sampler."""
    width = trial.suggest_categorical("width", list(seed_widths))
    base = seed_genotype(width, reductions, mode)
    genotype = base
    ops = sorted(OPS)
    for c in _growable_cells(base):
        n_new = trial.suggest_int(f"cell{c}.nodes", 0, max_new_nodes)
        for slot in range(max_new_nodes):
            n_inputs = CELL_INPUTS + len(base.cells[c].nodes) + slot
            edges: dict[Edge, None] = {}  # ordered and without repeats
            for e in range(max_edges):
                name = f"cell{c}.node{slot}.edge{e}"
                op = trial.suggest_categorical(f"{name}.op", ops if e == 0 else [*ops, NO_EDGE])
                source = trial.suggest_int(f"{name}.input", 0, n_inputs - 1)
                if op != NO_EDGE:
                    edges[Edge(source, str(op))] = None
            if slot < n_new:
                genotype = genotype.with_node(c, Node(tuple(edges)))
    return genotype


def _growable_cells(genotype: Genotype) -> list[int]:
    """Each cell in macro mode; in cell mode the first cell of each template stands for it."""
    return [c for c in range(len(genotype.cells)) if genotype.template_cells(c)[0] == c]
