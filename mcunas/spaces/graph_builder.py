"""The one place that turns layers into TFLite ops the way the export pipeline lowers them.

:func:`build_graph` turns a :class:`~mcunas.spaces.spec.NetSpec` into a
:class:`mcunas.graph.Graph` (NHWC, batch 1) through :class:`GraphBuilder`, which appends int8
ops, computing output shapes and MACs. It encodes what PyTorch -> ONNX -> onnx2tf 1.28 -> TFLite
converter (int8, TF 2.21) produces, checked against exported models (square and rectangular
inputs, kernels and strides):

* BatchNorm is folded: every convolution has an int32 bias ``(C_out,)``.
* Padding (:func:`conv_geometry`, which the PyTorch builder uses too): a convolution pads each
  axis symmetrically by ``p = ceil(t / 2)``, where ``t`` is the total padding of TensorFlow's
  SAME convolution of that axis (size, kernel, stride). For odd kernels and strides 1 and 2
  that is ``k // 2``; for an even kernel it is ``k / 2 - 1`` at stride 2 on an even size, else
  ``k / 2``. The output is TensorFlow SAME's ``ceil(size / stride)`` except for an even kernel
  at stride 1, whose output is one larger (no symmetric padding keeps the size). (Asymmetric
  padding would need a separate ``nn.ZeroPad2d``, which onnx2tf lowers to ``PADV2``.)
* How onnx2tf lowers that padding: a convolution whose output keeps the input's spatial size
  (every stride-1 convolution of odd kernels, 1x1 included, and a strided one on a 1x1 map)
  is a single ``SAME`` op. Otherwise onnx2tf pads explicitly, and the converter folds that pad
  into a ``SAME`` op when TensorFlow's SAME padding of both axes equals ``(p, p)``: stride 2 on
  odd sizes with odd kernels, even kernels at stride 2 whose SAME padding is symmetric (5x4
  stride 2 on 15x6, 4x3 stride (2, 1) on 12x7), stride-1 axes of odd kernels next to such a
  strided axis (3x3 stride (1, 2) on 3x7), ``p = 0`` axes. Else an explicit ``PAD`` (int32
  paddings constant ``(4, 2)``, ``(p_h, p_w)`` on each side) precedes the op, which has padding
  ``VALID``: stride 2 on an even size with an odd kernel, an even kernel at stride 1, and the
  MLPerf Tiny DS-CNN stem (10x4 stride 2x2 on 49x10: PyTorch pads 5 rows on both sides where
  SAME pads 4 and 5; PAD to 59x12, output 25x5). A convolution with ``p = 0`` on both axes
  (1x1 kernels, 2x2 stride 2 on even sizes) is ``VALID`` alone.
* Kernels and strides are (height, width) pairs; rectangular kernels lower like square ones,
  for depthwise convolutions too. A depthwise convolution must have equal strides: onnx2tf
  turns one with unequal strides into a grouped ``CONV_2D`` (:meth:`GraphBuilder.depthwise_conv2d`
  refuses it). An even kernel on a 1-pixel axis at stride 2 would be lowered to SAME with
  TensorFlow's padding, not PyTorch's: spaces must not produce it (dscnn's stem kernel is
  never larger than its input).
* ReLU / ReLU6 after a convolution are fused into it (``activation``).
* A ``max_pool`` layer (PyTorch ``MaxPool2d(k, s)``, no padding) is one ``MAX_POOL_2D`` with
  padding ``VALID`` and no fused activation: the output side is ``floor((size - k) / s) + 1``,
  so a 2x2 stride-2 pool drops the last row or column of an odd size (:func:`pool_geometry`).
  Its output keeps the input's per-tensor quantization.
* Global average pooling is ``MEAN`` over H, W (int32 axes constant ``(2,)``) keeping dims,
  ``(1, 1, 1, C)``; it vanishes when the map already is 1x1. The flatten before the classifier
  vanishes too: ``FULLY_CONNECTED`` reads the ``(1, 1, 1, C)`` tensor and writes ``(1, N)``.
* Weights are quantized per output channel (``quant_channels = C_out``, fully connected
  included), biases likewise; activations per tensor; int32 axes/padding constants are not
  quantized.

MACs: conv ``Ho*Wo*Co*KH*KW*Ci``; depthwise ``Ho*Wo*C*KH*KW``; fully connected
``N_in*N_out``; PAD, ADD, MAX_POOL_2D, MEAN 0.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, NamedTuple

from mcunas.graph.ir import Graph, Op, Tensor
from mcunas.spaces.spec import BlockSpec, LayerSpec, NetSpec, Pair

# Per-channel (True) or per-tensor quantization of FULLY_CONNECTED weights; the TFLite
# converter quantizes dense layers per channel unless told otherwise.
FULLY_CONNECTED_PER_CHANNEL = True


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's SAME convolution along one axis of ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvGeometry(NamedTuple):
    """How a convolution of a given input is padded and lowered (see the module doc).

    Attributes:
        out_height, out_width: output size, pixels.
        padding: the TFLite op's ``SAME`` or ``VALID``.
        pad: (height, width) padding on each side, pixels: the PyTorch convolution's
            ``padding``, and the explicit ``PAD`` op's when there is one.
        explicit_pad: whether a ``PAD`` op precedes the (``VALID``) convolution.
        kernel, stride: the (height, width) pairs (shared by ops of the same geometry).
    """

    out_height: int
    out_width: int
    padding: str
    pad: Pair
    explicit_pad: bool
    kernel: Pair
    stride: Pair


@lru_cache(maxsize=1024)
def conv_geometry(height: int, width: int, kernel: Pair, stride: Pair) -> ConvGeometry:
    """Output size, padding and lowering of a convolution of a ``height x width`` input.

    Cached (a space uses a few dozen distinct geometries), so ops also share the kernel and
    stride pairs, which saves allocations.
    """
    before_h, after_h = tf_same_padding(height, kernel[0], stride[0])
    before_w, after_w = tf_same_padding(width, kernel[1], stride[1])
    pad_h = (before_h + after_h + 1) // 2
    pad_w = (before_w + after_w + 1) // 2
    out_height = (height + 2 * pad_h - kernel[0]) // stride[0] + 1
    out_width = (width + 2 * pad_w - kernel[1]) // stride[1] + 1
    folded = (pad_h or pad_w) and (before_h, after_h) == (pad_h, pad_h) and (before_w, after_w) == (pad_w, pad_w)
    if (out_height, out_width) == (height, width) or folded:
        padding, explicit_pad = "SAME", False
    else:
        padding, explicit_pad = "VALID", bool(pad_h or pad_w)
    return ConvGeometry(out_height, out_width, padding, (pad_h, pad_w), explicit_pad, kernel, stride)


@lru_cache(maxsize=256)
def pool_geometry(height: int, width: int, kernel: Pair, stride: Pair) -> ConvGeometry:
    """Output size of a max pool without padding (``VALID``; see the module doc).

    Raises ValueError when the window is larger than the input (no output pixel).
    """
    if kernel[0] > height or kernel[1] > width:
        raise ValueError(f"a {kernel[0]}x{kernel[1]} pool needs an input of at least that size, got {height}x{width}")
    out_height = (height - kernel[0]) // stride[0] + 1
    out_width = (width - kernel[1]) // stride[1] + 1
    return ConvGeometry(out_height, out_width, "VALID", (0, 0), False, kernel, stride)


class GraphBuilder:
    """Appends ops to a graph; each method takes and returns activation tensor indices."""

    def __init__(self, name: str):
        self.graph = Graph(name)
        self._tensors = self.graph.tensors
        self._ops = self.graph.ops

    def shape(self, tensor: int) -> tuple[int, ...]:
        return self._tensors[tensor].shape

    def input(self, height: int, width: int, channels: int, name: str = "input") -> int:
        """The graph input, int8 ``(1, H, W, C)``."""
        index = self._tensor(name, (1, height, width, channels), "int8", False, 1)
        self.graph.inputs = (index,)
        return index

    def finish(self, output: int) -> Graph:
        """Mark ``output`` as the graph output and return the graph."""
        self.graph.outputs = (output,)
        return self.graph

    def conv2d(self, x: int, layer: LayerSpec, name: str) -> int:
        """A ``conv`` layer: full convolution, (height, width) kernel and stride, bias, fused activation."""
        in_channels = self._tensors[x].shape[3]
        kernel = layer.kernel
        weights_shape = (layer.out_channels, kernel[0], kernel[1], in_channels)
        return self._convolution("CONV_2D", x, weights_shape, layer, name, in_channels)

    def depthwise_conv2d(self, x: int, layer: LayerSpec, name: str) -> int:
        """A ``depthwise`` layer: channel multiplier 1, equal strides, bias, fused activation."""
        if layer.stride[0] != layer.stride[1]:
            raise ValueError(f"{name}: a depthwise convolution needs equal strides, got {layer.stride}")
        kernel = layer.kernel
        weights_shape = (1, kernel[0], kernel[1], self._tensors[x].shape[3])
        return self._convolution("DEPTHWISE_CONV_2D", x, weights_shape, layer, name, 1)

    def max_pool2d(self, x: int, layer: LayerSpec, name: str) -> int:
        """A ``max_pool`` layer: ``MAX_POOL_2D``, VALID, (height, width) window and stride."""
        _, height, width, channels = self._tensors[x].shape
        geometry = pool_geometry(height, width, layer.kernel, layer.stride)
        out = self._tensor(name + "/output", (1, geometry.out_height, geometry.out_width, channels), "int8", False, 1)
        self._ops.append(Op("MAX_POOL_2D", (x,), (out,), geometry.kernel, geometry.stride, "VALID", "NONE", 0))
        return out

    def add(self, a: int, b: int, name: str) -> int:
        """Element-wise ``a + b`` of two same-shape activations (residual connection)."""
        shape = self._tensors[a].shape
        if shape != self._tensors[b].shape:
            raise ValueError(f"{name}: ADD of shapes {shape} and {self._tensors[b].shape}")
        out = self._tensor(name + "/output", shape, "int8", False, 1)
        self._ops.append(Op("ADD", (a, b), (out,), None, None, None, "NONE", 0))
        return out

    def global_average_pool(self, x: int, name: str) -> int:
        """``MEAN`` over H and W with kept dims, ``(1, H, W, C) -> (1, 1, 1, C)``; none if H = W = 1."""
        _, height, width, channels = self._tensors[x].shape
        if height == 1 and width == 1:
            return x
        axes = self._tensor(name + "/axes", (2,), "int32", True, 0)
        out = self._tensor(name + "/output", (1, 1, 1, channels), "int8", False, 1)
        self._ops.append(Op("MEAN", (x, axes), (out,), None, None, None, "NONE", 0))
        return out

    def fully_connected(self, x: int, out_features: int, name: str) -> int:
        """``(..., N_in) -> (1, N_out)`` with weights ``(N_out, N_in)`` and an int32 bias, no activation.

        The input may keep leading 1-dims (``(1, 1, 1, C)``): TFLite flattens them.
        """
        in_features = self._tensors[x].shape[-1]
        weight_channels = out_features if FULLY_CONNECTED_PER_CHANNEL else 1
        weights = self._tensor(name + "/weights", (out_features, in_features), "int8", True, weight_channels)
        bias = self._tensor(name + "/bias", (out_features,), "int32", True, weight_channels)
        out = self._tensor(name + "/output", (1, out_features), "int8", False, 1)
        self._ops.append(Op("FULLY_CONNECTED", (x, weights, bias), (out,), None, None, None, "NONE", in_features * out_features))
        return out

    def _tensor(self, name: str, shape: tuple[int, ...], dtype: str, is_constant: bool, quant_channels: int) -> int:
        """Append a tensor and return its index."""
        tensors = self._tensors
        index = len(tensors)
        tensors.append(Tensor(index, name, shape, dtype, is_constant, quant_channels))
        return index

    def _convolution(
        self, kind: str, x: int, weights_shape: tuple[int, int, int, int], layer: LayerSpec, name: str, channels_per_output: int
    ) -> int:
        """Shared part of conv2d/depthwise: weights, padding convention, bias, output shape, MACs.

        Tensors in the order of the exported model: weights (quantized per output channel),
        the ``PAD`` op's paddings and output if any, bias, output. ``channels_per_output`` is
        the input channels one output element reads (C_in, or 1 for depthwise), multiplied by
        the kernel area here.
        """
        _, height, width, _ = self._tensors[x].shape
        geometry = conv_geometry(height, width, layer.kernel, layer.stride)
        out_channels = weights_shape[0] if kind == "CONV_2D" else weights_shape[3]
        weights = self._tensor(name + "/weights", weights_shape, "int8", True, out_channels)
        if geometry.explicit_pad:
            x = self._pad(x, geometry.pad, name)
        bias = self._tensor(name + "/bias", (out_channels,), "int32", True, out_channels)
        out_height, out_width = geometry.out_height, geometry.out_width
        out = self._tensor(name + "/output", (1, out_height, out_width, out_channels), "int8", False, 1)
        kernel = geometry.kernel
        macs = out_height * out_width * out_channels * kernel[0] * kernel[1] * channels_per_output
        self._ops.append(Op(kind, (x, weights, bias), (out,), kernel, geometry.stride, geometry.padding, layer.activation, macs))
        return out

    def _pad(self, x: int, pad: Pair, name: str) -> int:
        """Explicit zero ``PAD`` of ``pad`` = (height, width) pixels on each side."""
        _, height, width, channels = self._tensors[x].shape
        paddings = self._tensor(name + "/paddings", (4, 2), "int32", True, 0)
        out = self._tensor(name + "/padded", (1, height + 2 * pad[0], width + 2 * pad[1], channels), "int8", False, 1)
        self._ops.append(Op("PAD", (x, paddings), (out,), None, None, None, "NONE", 0))
        return out


# Layer kind -> the GraphBuilder method that appends its ops (one entry per spec.LAYER_KINDS).
LAYER_EMITTERS: dict[str, Callable[[GraphBuilder, int, LayerSpec, str], int]] = {
    "conv": GraphBuilder.conv2d,
    "depthwise": GraphBuilder.depthwise_conv2d,
    "max_pool": GraphBuilder.max_pool2d,
}
# Layer kind -> its geometry from (height, width, kernel, stride): padding and output size,
# shared by both builders (one entry per spec.LAYER_KINDS).
LAYER_GEOMETRY: dict[str, Callable[[int, int, Pair, Pair], ConvGeometry]] = {
    "conv": conv_geometry,
    "depthwise": conv_geometry,
    "max_pool": pool_geometry,
}


def emit_block(builder: GraphBuilder, x: int, block: BlockSpec) -> int:
    """Append the ops of ``block`` to ``builder`` after activation ``x``; returns its output."""
    out = x
    prefix = block.name + "."
    emitters = LAYER_EMITTERS
    for layer in block.layers:
        out = emitters[layer.kind](builder, out, layer, prefix + layer.name)
    if block.residual:
        out = builder.add(out, x, f"{block.name}.add")
    return out


def emit_head(builder: GraphBuilder, x: int, num_classes: int) -> int:
    """Append the head every network shares (global average pool, classifier) after ``x``."""
    x = builder.global_average_pool(x, "pool")
    return builder.fully_connected(x, num_classes, "classifier")


def build_graph(net: NetSpec) -> Graph:
    """The op graph of the int8 TFLite model that export produces for ``net``.

    Made of three parts, each appended by one function (:mod:`mcunas.estimators.fast` builds
    the graphs of single parts with the same functions): the stem layer, each block
    (:func:`emit_block`), the head (:func:`emit_head`).
    """
    builder = GraphBuilder(net.name)
    x = builder.input(net.input_size[0], net.input_size[1], net.input_channels)
    x = LAYER_EMITTERS[net.stem.kind](builder, x, net.stem, net.stem.name)
    for block in net.blocks:
        x = emit_block(builder, x, block)
    return builder.finish(emit_head(builder, x, net.num_classes))
