"""PyTorch building blocks of the spaces (imported only by ``Space.build``).

Every convolution is ``Conv2d(bias=False, padding=k // 2) -> BatchNorm2d -> activation`` so
that export folds the BatchNorm into a biased, int8 TFLite convolution with the activation
fused. Activation names are those of the graph IR: ``"NONE"``, ``"RELU"``, ``"RELU6"``.
Models take NCHW float input and return logits (no softmax).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

_ACTIVATIONS = {"NONE": nn.Identity, "RELU": nn.ReLU, "RELU6": nn.ReLU6}


class ConvBnAct(nn.Sequential):
    """Square convolution with 'same'-style padding ``kernel // 2``, BatchNorm, activation."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, activation: str, groups: int = 1
    ):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            _ACTIVATIONS[activation](),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> kxk depthwise -> 1x1 linear projection [+ input].

    The expansion convolution is omitted for ``expansion == 1``; ``residual`` adds the input
    (the caller decides: stride 1 and equal channels).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int, residual: bool):
        super().__init__()
        mid_channels = in_channels * expansion
        self.expand = ConvBnAct(in_channels, mid_channels, 1, 1, "RELU6") if expansion != 1 else nn.Identity()
        self.depthwise = ConvBnAct(mid_channels, mid_channels, kernel, stride, "RELU6", groups=mid_channels)
        self.project = ConvBnAct(mid_channels, out_channels, 1, 1, "NONE")
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.residual else out


class DepthwiseSeparable(nn.Sequential):
    """MobileNetV1 / DS-CNN block: kxk depthwise -> 1x1 pointwise, both with activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, activation: str):
        super().__init__(
            ConvBnAct(in_channels, in_channels, kernel, stride, activation, groups=in_channels),
            ConvBnAct(in_channels, out_channels, 1, 1, activation),
        )


class StagedNet(nn.Module):
    """``stem -> blocks -> global average pool -> flatten -> linear`` (logits)."""

    def __init__(self, stem: nn.Module, blocks: Sequence[nn.Module], features: int, num_classes: int):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))
