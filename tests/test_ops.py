"""Every registered op, through every property an op must have (timm-style: new ops are
tested for free by being registered)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toolchain.arch.genotype import Cell, Edge, Genotype, Node
from toolchain.arch.network import Network
from toolchain.arch.ops import OPS, create_op
from toolchain.export.onnx import check_parity, export_onnx


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("side", [8, 7])
def test_op_keeps_channels_and_reduces_resolution(name: str, side: int) -> None:
    x = torch.randn(2, 6, side, side)
    assert create_op(name, 6, 1)(x).shape == (2, 6, side, side)
    half = (side + 1) // 2
    assert create_op(name, 6, 2)(x).shape == (2, 6, half, half)


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_exports_to_onnx_with_parity(name: str, tmp_path: Path) -> None:
    # The op on an edge of a normal and of a reduction cell, fed from a cell input and a node.
    extra = Node((Edge(2, name),))
    cells = (
        Cell(False, (Node((Edge(0, name),)), extra)),
        Cell(True, (Node((Edge(1, name),)), extra)),
    )
    model = Network(Genotype(4, cells), in_channels=3, num_classes=5)
    for module in model.modules():  # non-trivial gates and BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    for param in model.parameters():
        if param.dim() == 0:
            param.data.fill_(0.7)
    path = tmp_path / "op.onnx"
    export_onnx(model, (3, 9, 9), path, batch_size=1)
    result = check_parity(model, path, torch.randn(3, 3, 9, 9))
    assert result.passed and result.batch_size == 3


def test_unknown_op_lists_the_catalogue() -> None:
    with pytest.raises(KeyError, match="sep_conv_3x3"):
        create_op("conv_7x7", 4, 1)
