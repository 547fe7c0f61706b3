"""The candidate operation catalogue of DESIGN §3, registered by name.

Every op maps C channels to C channels; with stride 2 it also halves the resolution (a
reduction cell's edges from its inputs). Channel changes happen once, in the cell's input
preprocessing, so pools and identity need no projection inside an edge. Everything here is
plain Conv/BN/ReLU/Pool/Pad/Concat: it exports to ONNX and builds in TensorRT without plugins.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

OpFactory = Callable[[int, int], nn.Module]
OPS: dict[str, OpFactory] = {}


def register_op(name: str) -> Callable[[OpFactory], OpFactory]:
    def add(factory: OpFactory) -> OpFactory:
        if name in OPS:
            raise ValueError(f"op {name!r} registered twice")
        OPS[name] = factory
        return factory

    return add


def create_op(name: str, channels: int, stride: int) -> nn.Module:
    if name not in OPS:
        raise KeyError(f"unknown op {name!r}; available: {', '.join(sorted(OPS))}")
    return OPS[name](channels, stride)


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilatedSeparable(nn.Sequential):
    """ReLU, depthwise conv, pointwise conv, BN: one separable layer."""

    def __init__(self, channels: int, kernel: int, stride: int, dilation: int) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(
                channels, channels, kernel, stride, padding, dilation, groups=channels, bias=False
            ),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing every other pixel: two offset 1x1 convs, stride 2.

    The second path starts one pixel in; padding first keeps both paths the same size for odd
    inputs too (7 -> 4 and 4), which the classic slicing version gets wrong.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def _separable(kernel: int) -> OpFactory:
    # Applied twice, as in the originals; only the first may reduce.
    def make(channels: int, stride: int) -> nn.Module:
        return nn.Sequential(
            DilatedSeparable(channels, kernel, stride, dilation=1),
            DilatedSeparable(channels, kernel, 1, dilation=1),
        )

    return make


def _dilated(kernel: int) -> OpFactory:
    def make(channels: int, stride: int) -> nn.Module:
        return DilatedSeparable(channels, kernel, stride, dilation=2)

    return make


register_op("sep_conv_3x3")(_separable(3))
register_op("sep_conv_5x5")(_separable(5))
register_op("dil_conv_3x3")(_dilated(3))
register_op("dil_conv_5x5")(_dilated(5))


@register_op("max_pool_3x3")
def _max_pool(channels: int, stride: int) -> nn.Module:
    return nn.MaxPool2d(3, stride, padding=1)


@register_op("avg_pool_3x3")
def _avg_pool(channels: int, stride: int) -> nn.Module:
    return nn.AvgPool2d(3, stride, padding=1, count_include_pad=False)


@register_op("identity")
def _identity(channels: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
