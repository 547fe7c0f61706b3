"""Build an ``nn.Module`` from a genotype. Nothing about search lives here.

Parameter names follow the genotype's structure (``cells.<c>.nodes.<j>...``), so a child
that only appends nodes can load its parent's state dict: that is the warm start.
"""

from __future__ import annotations

import torch
from torch import nn

from toolchain.arch.genotype import CELL_INPUTS, Cell, Genotype, Node
from toolchain.arch.ops import FactorizedReduce, ReLUConvBN, create_op


def edge_stride(reduction: bool, source: int) -> int:
    """Only edges straight from a reduction cell's inputs reduce; its nodes are already small."""
    return 2 if reduction and source < CELL_INPUTS else 1


class NodeModule(nn.Module):
    def __init__(self, node: Node, channels: int, reduction: bool, gated: bool) -> None:
        super().__init__()
        # Every node after a cell's first joins the cell output through a gate that is zero at
        # birth, so a grown child starts out computing its parent's function exactly.
        self.gate = nn.Parameter(torch.zeros(())) if gated else None
        self.inputs = [e.input for e in node.edges]
        self.edges = nn.ModuleList(
            create_op(e.op, channels, edge_stride(reduction, e.input)) for e in node.edges
        )
        self.merge = (
            ReLUConvBN(channels * len(node.edges), channels) if len(node.edges) > 1 else None
        )

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        outs = [op(states[i]) for i, op in zip(self.inputs, self.edges, strict=True)]
        return outs[0] if self.merge is None else self.merge(torch.cat(outs, dim=1))


class CellModule(nn.Module):
    def __init__(
        self, cell: Cell, c_prev_prev: int, c_prev: int, channels: int, prev_prev_larger: bool
    ) -> None:
        super().__init__()
        self.channels = channels
        self.reduction = cell.reduction
        # Bring both inputs to this cell's channels and to the previous cell's resolution.
        self.pre0 = (
            FactorizedReduce(c_prev_prev, channels)
            if prev_prev_larger
            else ReLUConvBN(c_prev_prev, channels)
        )
        self.pre1 = ReLUConvBN(c_prev, channels)
        self.nodes = nn.ModuleList(
            NodeModule(n, channels, cell.reduction, gated=j > 0) for j, n in enumerate(cell.nodes)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return self.combine(self.states(s0, s1))

    def states(self, s0: torch.Tensor, s1: torch.Tensor) -> list[torch.Tensor]:
        """The two preprocessed inputs, then every node's output, by index."""
        states = [self.pre0(s0), self.pre1(s1)]
        for node in self.nodes:
            states.append(node(states))
        return states

    def combine(self, states: list[torch.Tensor]) -> torch.Tensor:
        """The cell output: node 0 plus every later node through its gate."""
        out = states[CELL_INPUTS]
        for node, node_out in zip(self.nodes[1:], states[CELL_INPUTS + 1 :], strict=True):
            assert isinstance(node, NodeModule) and node.gate is not None
            out = out + node.gate * node_out
        return out


class Network(nn.Module):
    def __init__(self, genotype: Genotype, in_channels: int, num_classes: int) -> None:
        super().__init__()
        c = genotype.channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        c_pp, c_p = c, c
        prev_reduced = False
        cells = []
        for cell in genotype.cells:
            if cell.reduction:
                c *= 2
            cells.append(CellModule(cell, c_pp, c_p, c, prev_prev_larger=prev_reduced))
            c_pp, c_p, prev_reduced = c_p, c, cell.reduction
        self.cells = nn.ModuleList(cells)
        self.head = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_p, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)


def warm_start(child: nn.Module, parent_state: dict[str, torch.Tensor]) -> list[str]:
    """Load every parent weight into ``child``; return the names the parent did not have.

    Growth only appends nodes, so the parent's names are a subset of the child's. Anything
    else (a parent weight with no place in the child, a shape change) is a bug in growth.
    """
    result = child.load_state_dict(parent_state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"parent weights with no place in the child: {result.unexpected_keys[:3]}")
    return list(result.missing_keys)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs of one image, by torch's own counter (convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(counter.get_total_flops())
