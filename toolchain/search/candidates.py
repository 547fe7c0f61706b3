"""Petridish's weak-learner phase (DESIGN §3): which (input, op) pairs to add at a merge point.

Every allowed pair is attached at the chosen cell outputs at once. Each pair reads its input
through stop-gradient, so the parent never changes; the ω-weighted sum of the pairs passes
through stop-forward (``y - y.detach()``: zero forwards, identity backwards), so the network
still computes exactly the parent's function while each pair receives the loss's gradient at
the merge point and learns to follow it, like a weak learner in gradient boosting. An L1
penalty on ω makes the useful pairs stand out; the top k by |ω| are kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolchain.arch.genotype import CELL_INPUTS, Edge, Genotype, Node
from toolchain.arch.network import CellModule, Network, edge_stride
from toolchain.arch.ops import OPS, create_op
from toolchain.data import Dataset
from toolchain.errors import ModelFailed
from toolchain.train import augment, seed_everything

NEGLIGIBLE_OMEGA = 1e-3  # |ω| below this, relative to the largest in its cell, is "~0"


@dataclass(frozen=True)
class CandidateConfig:
    epochs: int = 1
    k: int = 3  # pairs kept per merge point
    merge_points: int = 1  # cells grown per child
    l1: float | None = None  # λ; None: 1e-2 / number of pairs, as in DESIGN §3
    lr: float = 0.05
    batch_size: int = 64


@dataclass(frozen=True)
class PairScore:
    cell: int
    input: int
    op: str
    omega: float


@dataclass(frozen=True)
class CandidateRecord:
    """What the candidate phase saw and chose; stored on the child's trial."""

    merge_points: list[int]
    pairs: list[PairScore]
    kept: list[PairScore]
    l1: float
    epochs: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class CandidateCell(nn.Module):
    """A parent cell with every candidate pair attached behind stop-gradient/stop-forward."""

    def __init__(self, cell: CellModule, pairs: list[Edge], omega: nn.Parameter) -> None:
        super().__init__()
        self.cell = cell
        self.pairs = pairs
        self.ops = nn.ModuleList(
            create_op(p.op, cell.channels, edge_stride(cell.reduction, p.input)) for p in pairs
        )
        self.omega = omega  # shared by every cell of a template in cell mode

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = self.cell.states(s0, s1)
        weak = self.weak_learners(states)
        return self.cell.combine(states) + (weak - weak.detach())  # stop-forward

    def weak_learners(self, states: list[torch.Tensor]) -> torch.Tensor:
        """Σ ω·op(input), every input behind stop-gradient so the parent never learns from it."""
        outs = [
            w * op(states[pair.input].detach())
            for w, pair, op in zip(self.omega, self.pairs, self.ops, strict=True)
        ]
        return torch.stack(outs).sum(0)


def candidate_pairs(genotype: Genotype, cell_index: int) -> list[Edge]:
    """Every (input, op): the cell's two inputs (the previous two cells) and each of its nodes."""
    sources = range(CELL_INPUTS + len(genotype.cells[cell_index].nodes))
    return [Edge(source, op) for source in sources for op in sorted(OPS)]


def choose_merge_points(
    genotype: Genotype, n: int, rng: np.random.Generator, used: frozenset[int] = frozenset()
) -> list[int]:
    """``n`` cells at random, those the parent has not grown at yet first.

    In cell mode a merge point stands for its whole template: at most one per cell type.
    """
    fresh = [c for c in range(len(genotype.cells)) if c not in used]
    stale = [c for c in range(len(genotype.cells)) if c in used]
    chosen: list[int] = []
    for c in [int(c) for c in rng.permutation(fresh)] + [int(c) for c in rng.permutation(stale)]:
        if len(chosen) < n and not any(c in genotype.template_cells(m) for m in chosen):
            chosen.append(c)
    return sorted(chosen)


def attach(model: Network, genotype: Genotype, merge_points: list[int]) -> dict[int, CandidateCell]:
    """Swap every cell a merge point grows (its template's, in cell mode) for a CandidateCell.

    The parent's weights stay frozen. The cells of one template share their ω, so the pairs
    are ranked for the template as a whole; each cell has its own candidate weights.
    """
    for param in model.parameters():
        param.requires_grad_(False)
    attached = {}
    for m in merge_points:
        pairs = candidate_pairs(genotype, m)
        omega = nn.Parameter(torch.full((len(pairs),), 1.0 / len(pairs)))
        for c in genotype.template_cells(m):
            attached[c] = CandidateCell(model.cells[c], pairs, omega)  # type: ignore[arg-type]
            model.cells[c] = attached[c]
    return attached


def _omegas(attached: dict[int, CandidateCell]) -> list[nn.Parameter]:
    """Each ω once, however many cells share it."""
    return list({id(cell.omega): cell.omega for cell in attached.values()}.values())


def train_candidates(
    model: Network,
    attached: dict[int, CandidateCell],
    data: Dataset,
    config: CandidateConfig,
    seed: int,
    l1: float,
) -> None:
    """Task loss plus λ·Σ|ω|, candidates and ω only; the frozen parent stays in eval mode."""
    gen = seed_everything(seed)
    omegas = _omegas(attached)
    params = [p for cell in attached.values() for p in cell.ops.parameters()] + omegas
    optimiser = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
    x_all, y_all = data.train.images, data.train.labels
    for epoch in range(config.epochs):
        model.eval()  # frozen parent: its BN statistics must not move
        for cell in attached.values():
            cell.ops.train()
        order = torch.randperm(len(y_all), generator=gen)
        for start in range(0, len(y_all), config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = F.cross_entropy(model(augment(x_all[idx], data.hflip, gen)), y_all[idx])
            loss = loss + l1 * sum(omega.abs().sum() for omega in omegas)
            if not torch.isfinite(loss):
                raise ModelFailed(f"candidate phase loss became {loss.item()} in epoch {epoch + 1}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()


def select(
    attached: dict[int, CandidateCell], merge_points: list[int], k: int, l1: float, epochs: int
) -> CandidateRecord:
    """Score every pair by its final ω; keep the top ``k`` per merge point, none that are ~0."""
    pairs: list[PairScore] = []
    kept: list[PairScore] = []
    for m in merge_points:
        cell = attached[m]
        omegas = cell.omega.detach().tolist()
        scores = [PairScore(m, p.input, p.op, w) for p, w in zip(cell.pairs, omegas, strict=True)]
        ranked = sorted(scores, key=lambda s: -abs(s.omega))
        floor = NEGLIGIBLE_OMEGA * abs(ranked[0].omega)
        kept += [s for s in ranked[:k] if abs(s.omega) > floor]
        pairs += scores
    return CandidateRecord(merge_points, pairs, kept, l1, epochs)


def finalise(
    parent: Genotype,
    parent_state: dict[str, torch.Tensor],
    attached: dict[int, CandidateCell],
    record: CandidateRecord,
) -> tuple[Genotype, dict[str, torch.Tensor]]:
    """The child genotype (one new node per merge point) and its warm-start weights.

    The new node's edges take the kept candidates' trained weights; its 1x1 merge conv is
    fresh, and its gate starts at zero, so the child computes the parent's function.
    """
    child, state = parent, dict(parent_state)
    for m in record.merge_points:
        kept = [Edge(s.input, s.op) for s in record.kept if s.cell == m]
        if not kept:
            continue
        node_index = len(child.cells[m].nodes)
        child = child.with_node(m, Node(tuple(kept)))
        for c in parent.template_cells(m):  # each cell keeps its own candidates' weights
            cell = attached[c]
            for e, edge in enumerate(kept):
                op = cell.ops[cell.pairs.index(edge)]
                prefix = f"cells.{c}.nodes.{node_index}.edges.{e}."
                state.update({prefix + name: value for name, value in op.state_dict().items()})
    if child == parent:
        raise ModelFailed("the candidate phase kept no pair: every ω went to zero")
    return child, state


def grow_by_candidates(
    parent: Genotype,
    parent_state: dict[str, torch.Tensor],
    data: Dataset,
    config: CandidateConfig,
    seed: int,
    rng: np.random.Generator,
    used_merge_points: frozenset[int] = frozenset(),
) -> tuple[Genotype, dict[str, torch.Tensor], CandidateRecord]:
    """The whole phase: attach, train, select, finalise."""
    model = Network(parent, data.input_shape[0], len(data.classes))
    model.load_state_dict(parent_state)
    merge_points = choose_merge_points(parent, config.merge_points, rng, used_merge_points)
    torch.manual_seed(seed)  # candidate ops' initial weights
    attached = attach(model, parent, merge_points)
    n_pairs = sum(len(omega) for omega in _omegas(attached))  # shared ω counted once
    l1 = config.l1 if config.l1 is not None else 1e-2 / n_pairs
    train_candidates(model, attached, data, config, seed, l1)
    record = select(attached, merge_points, config.k, l1, config.epochs)
    child, state = finalise(parent, parent_state, attached, record)
    return child, state, record
