"""Building blocks shared by the NB201 search network and the standalone NB201 network.

The macro skeleton is NAS-Bench-201's: a 3x3 conv + BN stem, three stages of ``N`` cells with
ResNet basic blocks (stride 2, channels doubled) between them, BN + ReLU, global average
pooling and a linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN: NB201's ``nor_conv_kxk`` and the ResNet block's halves."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two ReLU-conv-BN 3x3 layers plus an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


def stage_layout(channels: int, cells_per_stage: int) -> list[tuple[int, bool]]:
    """(output channels, is reduction block) of every layer between stem and head."""
    n = cells_per_stage
    return (
        [(channels, False)] * n
        + [(2 * channels, True)]
        + [(2 * channels, False)] * n
        + [(4 * channels, True)]
        + [(4 * channels, False)] * n
    )


def stem(channels: int) -> nn.Sequential:
    """3x3 conv (3 -> ``channels``) + BN."""
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))


class Head(nn.Module):
    """BN + ReLU, global average pooling, linear classifier."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.bn(x)).mean(dim=(2, 3)))
