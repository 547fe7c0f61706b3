from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from toolchain.arch.genotype import seed_genotype
from toolchain.arch.network import Network
from toolchain.errors import ModelFailed
from toolchain.export.onnx import INPUT_NAME, check_parity, export_onnx


def test_export_has_a_dynamic_batch_axis(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_onnx(Network(seed_genotype(4, 2), 3, 10), (3, 16, 16), path, batch_size=1)
    graph_input = onnx.load(str(path)).graph.input[0]
    assert graph_input.name == INPUT_NAME
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 16, 16]


def test_parity_catches_a_different_model(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    torch.manual_seed(0)
    exported = Network(seed_genotype(4, 2), 3, 10)
    export_onnx(exported, (3, 16, 16), path, batch_size=1)
    images = torch.randn(5, 3, 16, 16)
    ok = check_parity(exported, path, images)
    assert ok.passed and ok.max_abs_diff <= ok.tolerance
    other = Network(seed_genotype(4, 2), 3, 10)  # same shapes, other weights
    with pytest.raises(ModelFailed, match="differs from PyTorch") as info:
        check_parity(other, path, images)
    assert info.value.details["parity"]["passed"] is False


class DataDependentBranch(torch.nn.Module):
    """Control flow on values: torch.export cannot trace it, so export must fail cleanly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


def test_a_model_that_cannot_export_fails_as_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFailed, match="ONNX export failed"):
        export_onnx(DataDependentBranch(), (3, 4, 4), tmp_path / "m.onnx", batch_size=1)


def test_cell_mode_model_exports_with_parity(tmp_path: Path) -> None:
    from toolchain.arch.genotype import Edge, Node

    g = seed_genotype(4, 2, "cell").with_node(
        1, Node((Edge(0, "sep_conv_5x5"), Edge(2, "max_pool_3x3")))
    )
    model = Network(g, 3, 10)
    for param in model.parameters():
        if param.dim() == 0:  # open the gates, so the grown template's nodes count
            param.data.fill_(0.5)
    path = tmp_path / "cell.onnx"
    export_onnx(model, (3, 16, 16), path, batch_size=1)
    assert check_parity(model, path, torch.randn(3, 3, 16, 16)).passed
