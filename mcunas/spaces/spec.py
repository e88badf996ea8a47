"""Layer specs: the one description of a network, from which both its forms are built.

A space turns an Arch into a :class:`NetSpec` (``Space.spec(arch)``): the input, a stem layer,
blocks of layers, and the head every space shares (global average pool, linear classifier).
:func:`mcunas.spaces.layers.build_module` makes the PyTorch model of a NetSpec and
:func:`mcunas.spaces.graph_builder.build_graph` its op graph (the int8 TFLite model that export
produces); neither knows any space.

Names: a layer's graph tensors are named ``<block>.<layer>/...`` (``stem/...`` for the stem),
and its PyTorch module is ``blocks.<i>.<layer>`` (``stem``), so state dicts name layers the
way graphs do.

Padding is not part of a spec: every convolution pads symmetrically, by the amount
``mcunas.spaces.graph_builder.conv_geometry`` derives from its input size, kernel and stride
(the builders share that one function; see its docstring).

Adding a block type (e.g. a plain convolution, a pooling block): write one function in
:mod:`mcunas.spaces.blocks` that returns its :class:`BlockSpec` from the block's slot and
choices, and call it from a space's ``_block_layers``. If the block needs a layer kind that
:data:`LAYER_KINDS` lacks (a pooling layer), add the kind here, its lowering to TFLite ops as one
``GraphBuilder`` method entered in ``graph_builder.LAYER_EMITTERS`` (with the onnx2tf facts in
that module's docstring, checked by a real export), and its PyTorch module entered in
``layers.LAYER_MODULES``; ``test_every_layer_kind_has_both_builders`` fails until both exist, and
the graph-vs-PyTorch and graph-vs-export tests check that the two agree.

LayerSpec and BlockSpec are named tuples rather than dataclasses for the same reason as the
graph IR's Tensor and Op: a search builds thousands of specs per second.
"""

from __future__ import annotations

from typing import NamedTuple

# Layer kinds: ``conv`` (full convolution), ``depthwise`` (depthwise convolution, channel
# multiplier 1), both followed by BatchNorm (folded by export) and the fused activation;
# ``max_pool`` (max over a window, no padding: the output side is ``floor((size - k) / s) + 1``;
# no parameters, activation ``NONE``).
LAYER_KINDS: tuple[str, ...] = ("conv", "depthwise", "max_pool")

Pair = tuple[int, int]


class LayerSpec(NamedTuple):
    """One layer.

    Attributes:
        kind: one of :data:`LAYER_KINDS`.
        name: unique within its block, a Python identifier (``expand``, ``depthwise``, ...).
        out_channels: output channels (a depthwise or pooling layer's equal its input's).
        kernel: (height, width) of the kernel, pixels.
        stride: (height, width) stride; a depthwise layer's must be square (onnx2tf lowers a
            depthwise convolution with unequal strides to a grouped CONV_2D).
        activation: the fused activation, named as in the graph IR: ``NONE``, ``RELU``, ``RELU6``.
    """

    kind: str
    name: str
    out_channels: int
    kernel: Pair
    stride: Pair
    activation: str


class BlockSpec(NamedTuple):
    """Layers run in sequence; ``residual`` adds the block's input to its output."""

    name: str
    layers: tuple[LayerSpec, ...]
    residual: bool = False


class NetSpec(NamedTuple):
    """``input -> stem -> blocks -> global average pool -> linear`` (logits).

    Attributes:
        name: the graph's name (the Arch's block string).
        input_size: (height, width) of the input, pixels (or frames x coefficients).
        input_channels: input channels.
        stem: the first layer (named ``stem``).
        blocks: the blocks in execution order.
        num_classes: classifier outputs.
    """

    name: str
    input_size: Pair
    input_channels: int
    stem: LayerSpec
    blocks: tuple[BlockSpec, ...]
    num_classes: int

