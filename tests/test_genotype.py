from __future__ import annotations

import subprocess
import sys

import pytest

from toolchain.arch.genotype import Cell, Edge, Genotype, Node, seed_genotype


def test_json_round_trip_keeps_arch_id() -> None:
    g = seed_genotype(16, 2)
    grown = g.with_node(1, Node((Edge(0, "max_pool_3x3"), Edge(2, "identity"))))
    back = Genotype.from_dict(grown.to_dict())
    assert back == grown
    assert back.arch_id == grown.arch_id != g.arch_id


def test_arch_id_is_stable_across_processes() -> None:
    code = "from toolchain.arch.genotype import seed_genotype; print(seed_genotype(16, 2).arch_id)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == seed_genotype(16, 2).arch_id


def test_seed_has_one_sep_conv_cell_per_stage() -> None:
    g = seed_genotype(8, 2)
    assert [c.reduction for c in g.cells] == [False, True, True]
    assert all(c.nodes == (Node((Edge(1, "sep_conv_3x3"),)),) for c in g.cells)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (Cell(False, (Node((Edge(2, "identity"),)),)), "input 2 is not an earlier node"),
        (Cell(False, (Node((Edge(0, "conv_7x7"),)),)), "unknown op"),
        (Cell(False, (Node(()),)), "has no edges"),
        (Cell(False, ()), "has no nodes"),
    ],
)
def test_invalid_genotypes_are_rejected(cell: Cell, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Genotype(8, (cell,))


def test_cell_mode_template_change_reaches_every_cell_of_its_type() -> None:
    g = seed_genotype(8, 2, "cell")
    assert [c.reduction for c in g.cells] == [False, True, False, True, False]
    grown = g.with_node(3, Node((Edge(0, "dil_conv_3x3"),)))
    assert [len(c.nodes) for c in grown.cells] == [1, 2, 1, 2, 1]
    grown = grown.with_node(0, Node((Edge(2, "avg_pool_3x3"),)))
    assert [len(c.nodes) for c in grown.cells] == [2, 2, 2, 2, 2]
    assert Genotype.from_dict(grown.to_dict()) == grown and grown.mode == "cell"
    macro = seed_genotype(8, 2).with_node(0, Node((Edge(2, "avg_pool_3x3"),)))
    assert [len(c.nodes) for c in macro.cells] == [2, 1, 1]


def test_cell_mode_refuses_cells_that_break_their_template() -> None:
    one, two = Node((Edge(1, "sep_conv_3x3"),)), Node((Edge(0, "identity"),))
    with pytest.raises(ValueError, match="normal cells differ"):
        Genotype(8, (Cell(False, (one,)), Cell(True, (one,)), Cell(False, (two,))), "cell")
