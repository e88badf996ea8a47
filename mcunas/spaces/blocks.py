"""Block types: each is one function from a block's place and choices to its layer specs.

A space's ``_block_layers`` calls one of these per block (see :mod:`mcunas.spaces.spec` for
how to add a block type or a layer kind). ``slot`` gives the block's name, input and output
channels and stride (:class:`mcunas.spaces.arch.BlockSlot`).

Block types are pure functions of hashable values, cached: a search makes the same blocks again
and again, and equal blocks then are the same object (cheaper to make and to compare).
"""

from __future__ import annotations

from functools import lru_cache

from mcunas.spaces.arch import BlockSlot
from mcunas.spaces.spec import BlockSpec, LayerSpec


_ONE = (1, 1)  # 1x1 kernel, stride 1
# Distinct blocks a cached block type keeps (a space has a few thousand).
_CACHED_BLOCKS = 65536
# Window and stride of the max pool a block may end with (pixels): halves each side.
MAX_POOL_WINDOW = (2, 2)


@lru_cache(maxsize=_CACHED_BLOCKS)
def inverted_residual(slot: BlockSlot, kernel: int, expansion: int) -> BlockSpec:
    """MobileNetV2 block: [1x1 expand, ReLU6] -> kxk depthwise, ReLU6 -> 1x1 linear projection [+ input].

    No expansion layer for ``expansion == 1``; residual when the stride is 1 and the channels
    are equal.
    """
    mid_channels = slot.in_channels * expansion
    depthwise = LayerSpec("depthwise", "depthwise", mid_channels, (kernel, kernel), (slot.stride, slot.stride), "RELU6")
    project = LayerSpec("conv", "project", slot.out_channels, _ONE, _ONE, "NONE")
    if expansion == 1:
        return BlockSpec(slot.name, (depthwise, project), slot.residual)
    expand = LayerSpec("conv", "expand", mid_channels, _ONE, _ONE, "RELU6")
    return BlockSpec(slot.name, (expand, depthwise, project), slot.residual)


@lru_cache(maxsize=_CACHED_BLOCKS)
def depthwise_separable(slot: BlockSlot, kernel: int, activation: str) -> BlockSpec:
    """MobileNetV1 / DS-CNN block: kxk depthwise -> 1x1 pointwise, both with ``activation``."""
    depthwise = LayerSpec("depthwise", "depthwise", slot.in_channels, (kernel, kernel), (slot.stride, slot.stride), activation)
    pointwise = LayerSpec("conv", "pointwise", slot.out_channels, _ONE, _ONE, activation)
    return BlockSpec(slot.name, (depthwise, pointwise))


@lru_cache(maxsize=_CACHED_BLOCKS)
def plain_convolution(slot: BlockSlot, kernel: int, activation: str) -> BlockSpec:
    """A plain kxk convolution with ``activation`` (the block's stride, no residual)."""
    conv = LayerSpec("conv", "conv", slot.out_channels, (kernel, kernel), (slot.stride, slot.stride), activation)
    return BlockSpec(slot.name, (conv,))


@lru_cache(maxsize=_CACHED_BLOCKS)
def with_max_pool(block: BlockSpec, channels: int) -> BlockSpec:
    """``block`` followed by a 2x2 stride-2 max pool (layer ``pool``) of its ``channels`` outputs."""
    pool = LayerSpec("max_pool", "pool", channels, MAX_POOL_WINDOW, MAX_POOL_WINDOW, "NONE")
    return BlockSpec(block.name, (*block.layers, pool), block.residual)
