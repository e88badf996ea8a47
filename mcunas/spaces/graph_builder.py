"""The one place that turns layers into TFLite ops the way the export pipeline lowers them.

:class:`GraphBuilder` appends int8 ops to a :class:`mcunas.graph.Graph` (NHWC, batch 1),
computing output shapes and MACs. It encodes what PyTorch -> ONNX -> onnx2tf 1.28 -> TFLite
converter (int8) produces, checked against exported models:

* BatchNorm is folded: every convolution has an int32 bias ``(C_out,)``.
* Convolutions pad ``p = k // 2`` on every side. The op has padding ``SAME`` when the output
  keeps the input's spatial size (onnx2tf: every stride-1 conv, 1x1 kernels included, and a
  strided conv on a 1x1 input), or when TensorFlow's SAME padding of that input equals
  ``(p, p)`` (the converter folds the explicit pad into the conv: stride 2 on an odd size).
  Otherwise (stride 2 on an even size) an explicit ``PAD`` (int32 paddings constant
  ``(4, 2)``) precedes the conv, which has padding ``VALID``; a strided 1x1 conv (``p = 0``)
  is ``VALID`` alone.
* ReLU / ReLU6 after a convolution are fused into it (``activation``).
* Global average pooling is ``MEAN`` over H, W (int32 axes constant ``(2,)``) keeping dims,
  ``(1, 1, 1, C)``; it vanishes when the map already is 1x1. The flatten before the classifier
  vanishes too: ``FULLY_CONNECTED`` reads the ``(1, 1, 1, C)`` tensor and writes ``(1, N)``.
* Weights are quantized per output channel (``quant_channels = C_out``, fully connected
  included), biases likewise; activations per tensor; int32 axes/padding constants are not
  quantized.

MACs: conv ``Ho*Wo*Co*KH*KW*Ci``; depthwise ``Ho*Wo*C*KH*KW``; fully connected
``N_in*N_out``; PAD, ADD, MEAN 0.
"""

from __future__ import annotations

from functools import lru_cache

from mcunas.graph.ir import Graph, Op, Tensor

# Per-channel (True) or per-tensor quantization of FULLY_CONNECTED weights; the TFLite
# converter quantizes dense layers per channel unless told otherwise.
FULLY_CONNECTED_PER_CHANNEL = True


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's SAME convolution along one axis of ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@lru_cache(maxsize=1024)
def conv_geometry(height: int, width: int, kernel: int, stride: int) -> tuple[int, int, str, int, tuple[int, int], tuple[int, int]]:
    """``(out_height, out_width, padding, explicit_pad, (kernel, kernel), (stride, stride))`` of a
    convolution of a ``height x width`` input that pads ``kernel // 2``.

    ``padding`` is the op's ``SAME`` or ``VALID`` (see the module doc); ``explicit_pad`` is the
    pixels of the ``PAD`` op that precedes a ``VALID`` convolution, 0 when there is none.
    Cached (a space uses a few dozen distinct geometries), so ops also share the kernel and
    stride pairs, which saves allocations.
    """
    pad = kernel // 2
    out_height = (height + 2 * pad - kernel) // stride + 1
    out_width = (width + 2 * pad - kernel) // stride + 1
    same_as_tf = pad > 0 and tf_same_padding(height, kernel, stride) == tf_same_padding(width, kernel, stride) == (pad, pad)
    if (out_height, out_width) == (height, width) or same_as_tf:
        padding, explicit_pad = "SAME", 0
    else:
        padding, explicit_pad = "VALID", pad
    return out_height, out_width, padding, explicit_pad, (kernel, kernel), (stride, stride)


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

    def conv2d(self, x: int, out_channels: int, kernel: int, stride: int, activation: str, name: str) -> int:
        """Full convolution, square ``kernel``, padding ``kernel // 2``, bias, fused activation."""
        in_channels = self._tensors[x].shape[3]
        weights_shape = (out_channels, kernel, kernel, in_channels)
        return self._convolution("CONV_2D", x, weights_shape, out_channels, kernel, stride, activation, name, in_channels)

    def depthwise_conv2d(self, x: int, kernel: int, stride: int, activation: str, name: str) -> int:
        """Depthwise convolution (channel multiplier 1), padding ``kernel // 2``, bias, fused activation."""
        channels = self._tensors[x].shape[3]
        return self._convolution("DEPTHWISE_CONV_2D", x, (1, kernel, kernel, channels), channels, kernel, stride, activation, name, 1)

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
        self,
        kind: str,
        x: int,
        weights_shape: tuple[int, int, int, int],
        out_channels: int,
        kernel: int,
        stride: int,
        activation: str,
        name: str,
        channels_per_output: int,
    ) -> int:
        """Shared part of conv2d/depthwise: weights, padding convention, bias, output shape, MACs.

        Tensors in the order of the exported model: weights (quantized per output channel),
        the ``PAD`` op's paddings and output if any, bias, output. ``channels_per_output`` is
        the input channels one output element reads (C_in, or 1 for depthwise), multiplied by
        the kernel area here.
        """
        _, height, width, _ = self._tensors[x].shape
        out_height, out_width, padding, explicit_pad, kernel_pair, stride_pair = conv_geometry(height, width, kernel, stride)
        weights = self._tensor(name + "/weights", weights_shape, "int8", True, out_channels)
        if explicit_pad:
            x = self._pad(x, explicit_pad, name)
        bias = self._tensor(name + "/bias", (out_channels,), "int32", True, out_channels)
        out = self._tensor(name + "/output", (1, out_height, out_width, out_channels), "int8", False, 1)
        macs = out_height * out_width * out_channels * kernel * kernel * channels_per_output
        self._ops.append(Op(kind, (x, weights, bias), (out,), kernel_pair, stride_pair, padding, activation, macs))
        return out

    def _pad(self, x: int, pad: int, name: str) -> int:
        """Explicit zero ``PAD`` of ``pad`` pixels on each side of H and W."""
        _, height, width, channels = self._tensors[x].shape
        paddings = self._tensor(name + "/paddings", (4, 2), "int32", True, 0)
        out = self._tensor(name + "/padded", (1, height + 2 * pad, width + 2 * pad, channels), "int8", False, 1)
        self._ops.append(Op("PAD", (x, paddings), (out,), None, None, None, "NONE", 0))
        return out
