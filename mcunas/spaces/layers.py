"""The PyTorch model of a :class:`~mcunas.spaces.spec.NetSpec` (imported only by ``Space.build``).

Every convolution is ``Conv2d(bias=False, padding=p) -> BatchNorm2d -> activation`` so that
export folds the BatchNorm into a biased, int8 TFLite convolution with the activation fused;
``p`` is the symmetric padding of :func:`mcunas.spaces.graph_builder.conv_geometry` (the
convention the op graph models). A pooling layer is ``MaxPool2d`` without padding
(:func:`~mcunas.spaces.graph_builder.pool_geometry`). Activation names are those of the graph IR: ``"NONE"``, ``"RELU"``,
``"RELU6"``. Models take NCHW float input and return logits (no softmax).

Module names follow the spec: ``stem``, ``blocks.<i>.<layer name>``, ``classifier``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from mcunas.spaces.graph_builder import LAYER_GEOMETRY
from mcunas.spaces.spec import BlockSpec, LayerSpec, NetSpec, Pair

_ACTIVATIONS = {"NONE": nn.Identity, "RELU": nn.ReLU, "RELU6": nn.ReLU6}


class ConvBnAct(nn.Sequential):
    """Convolution (symmetric ``padding``, no bias), BatchNorm, activation."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: Pair, stride: Pair, padding: Pair, activation: str, groups: int = 1
    ):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            _ACTIVATIONS[activation](),
        )


def _conv(layer: LayerSpec, in_channels: int, padding: Pair) -> nn.Module:
    return ConvBnAct(in_channels, layer.out_channels, layer.kernel, layer.stride, padding, layer.activation)


def _depthwise(layer: LayerSpec, in_channels: int, padding: Pair) -> nn.Module:
    return ConvBnAct(in_channels, in_channels, layer.kernel, layer.stride, padding, layer.activation, groups=in_channels)


def _max_pool(layer: LayerSpec, in_channels: int, padding: Pair) -> nn.Module:
    return nn.MaxPool2d(layer.kernel, layer.stride, padding)


# Layer kind -> its module, from (spec, input channels, padding) (one entry per spec.LAYER_KINDS).
LAYER_MODULES: dict[str, Callable[[LayerSpec, int, Pair], nn.Module]] = {
    "conv": _conv,
    "depthwise": _depthwise,
    "max_pool": _max_pool,
}


class _Shape:
    """Channels and spatial size of the activation flowing through the model under construction."""

    def __init__(self, channels: int, size: Pair):
        self.channels = channels
        self.size = size

    def layer(self, layer: LayerSpec) -> nn.Module:
        """The module of ``layer`` applied to the current activation; advances the shape."""
        geometry = LAYER_GEOMETRY[layer.kind](self.size[0], self.size[1], layer.kernel, layer.stride)
        module = LAYER_MODULES[layer.kind](layer, self.channels, geometry.pad)
        self.channels = layer.out_channels
        self.size = (geometry.out_height, geometry.out_width)
        return module


class SpecBlock(nn.Module):
    """The layers of a :class:`BlockSpec` in sequence, plus the input when ``residual``."""

    def __init__(self, block: BlockSpec, shape: _Shape):
        super().__init__()
        for layer in block.layers:
            self.add_module(layer.name, shape.layer(layer))
        self.residual = block.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.children():
            out = layer(out)
        return out + x if self.residual else out


class SpecNet(nn.Module):
    """``stem -> blocks -> global average pool -> flatten -> linear`` (logits)."""

    def __init__(self, net: NetSpec):
        super().__init__()
        shape = _Shape(net.input_channels, net.input_size)
        self.stem = shape.layer(net.stem)
        self.blocks = nn.Sequential(*[SpecBlock(block, shape) for block in net.blocks])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(shape.channels, net.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


def build_module(net: NetSpec) -> nn.Module:
    """The PyTorch model of ``net`` (NCHW float input of ``net.input_size``, logits), freshly initialized."""
    return SpecNet(net)
