"""``cnn``: plain and depthwise-separable convolutions with max pooling, for tiny models (μNAS).

Network: stem conv -> stages of blocks -> MEAN -> linear. A block is either a plain kxk
convolution (``d0``) or a depthwise-separable pair, kxk depthwise + 1x1 pointwise (``d1``), each
convolution followed by BatchNorm and the activation; a block may end with a 2x2 stride-2 max
pool (``p1``). This is the kind of network μNAS (Liberis et al., 2021) finds for
microcontrollers with a few KB of RAM: a pool halves a map without the explicit ``PAD`` that a
stride-2 convolution on an even size needs (see :mod:`mcunas.spaces.graph_builder`), so it
shrinks activations at a smaller peak. Searched: input resolution, stem width (and kernel if
several are given), width and depth of each stage, and per block the kernel size, the block
type and the pool. The activation (``relu`` | ``relu6``) is an option recorded in the Arch.

A pool needs a map of at least 2x2: where a drawn pool would act on a smaller map (the input
already reduced to one pixel on an axis), the sampled Arch has no pool there (``p0``), and an
Arch that asks for one is refused. Block string stage token:
``cnn_r{depth}_k{kernels}_d{separable}_p{pools}_s{stride}_c{channels}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from mcunas.spaces.arch import ArchFieldError, BlockSlot, as_pair, check_block_table
from mcunas.spaces.blocks import MAX_POOL_WINDOW, depthwise_separable, plain_convolution, with_max_pool
from mcunas.spaces.graph_builder import conv_geometry, pool_geometry
from mcunas.spaces.mobilenetv1 import ACTIVATIONS, MobileNetV1Arch, MobileNetV1Space
from mcunas.spaces.options import OptionReader
from mcunas.spaces.spec import BlockSpec

FLAGS = (0, 1)


@dataclass(frozen=True)
class CnnArch(MobileNetV1Arch):
    """A :class:`~mcunas.spaces.mobilenetv1.MobileNetV1Arch` whose blocks may be plain
    convolutions and may end with a max pool.

    Attributes:
        block_separable: per stage, per block: 1 for a depthwise-separable block, 0 for a plain
            kxk convolution.
        block_pools: per stage, per block: 1 when a 2x2 stride-2 max pool ends the block.
    """

    space: ClassVar[str] = "cnn"
    block_prefix: ClassVar[str] = "cnn"
    block_fields: ClassVar[tuple[tuple[str, str], ...]] = (
        ("k", "block_kernels"), ("d", "block_separable"), ("p", "block_pools"),
    )

    block_separable: tuple[tuple[int, ...], ...]
    block_pools: tuple[tuple[int, ...], ...]

    def _validate(self) -> None:
        super()._validate()
        check_block_table(self.space, "block_separable", self.block_separable, self.depths, (0, 1), FLAGS)
        check_block_table(self.space, "block_pools", self.block_pools, self.depths, (0, 1), FLAGS)
        possible = possible_pools(self.input_size, self.stem_kernel_size, self.stem_stride_size, self.stage_strides,
                                  self.block_kernels, self.block_pools)
        for stage, (asked, kept) in enumerate(zip(self.block_pools, possible)):
            for index, (want, can) in enumerate(zip(asked, kept)):
                if want != can:
                    raise ArchFieldError(
                        f"{self.space} arch field 'block_pools[{stage}][{index}]': a "
                        f"{MAX_POOL_WINDOW[0]}x{MAX_POOL_WINDOW[1]} max pool needs a map of at least that size; "
                        "the block's output is smaller", f"block_pools[{stage}][{index}]",
                    )


def possible_pools(
    input_size: tuple[int, int],
    stem_kernel: tuple[int, int],
    stem_stride: tuple[int, int],
    stage_strides: tuple[int, ...],
    block_kernels: tuple[tuple[int, ...], ...],
    block_pools: tuple[tuple[int, ...], ...],
) -> tuple[tuple[int, ...], ...]:
    """``block_pools`` with 0 wherever a pool would act on a map smaller than its window.

    Walks the blocks in order (a dropped pool leaves the later maps larger); every block's
    strided convolution has the geometry of :func:`~mcunas.spaces.graph_builder.conv_geometry`.
    """
    geometry = conv_geometry(input_size[0], input_size[1], stem_kernel, stem_stride)
    size = (geometry.out_height, geometry.out_width)
    kept = []
    for stride, kernels, pools in zip(stage_strides, block_kernels, block_pools):
        row = []
        for index, (kernel, pool) in enumerate(zip(kernels, pools)):
            step = stride if index == 0 else 1
            geometry = conv_geometry(size[0], size[1], (kernel, kernel), (step, step))
            size = (geometry.out_height, geometry.out_width)
            pool = pool and size[0] >= MAX_POOL_WINDOW[0] and size[1] >= MAX_POOL_WINDOW[1]
            if pool:
                pooled = pool_geometry(size[0], size[1], MAX_POOL_WINDOW, MAX_POOL_WINDOW)
                size = (pooled.out_height, pooled.out_width)
            row.append(int(pool))
        kept.append(tuple(row))
    return tuple(kept)


class CnnSpace(MobileNetV1Space):
    """Options beyond :class:`~mcunas.spaces.mobilenetv1.MobileNetV1Space`'s:
    ``separable_choices`` (block types to draw from: 0 plain, 1 depthwise-separable) and
    ``pool_choices`` (0 no pool, 1 a max pool after the block)."""

    name: ClassVar[str] = "cnn"
    arch_type = CnnArch
    defaults: ClassVar[Mapping[str, Any]] = {
        "input_channels": 1,
        "num_classes": 10,
        "resolutions": [14, 16, 20, 28],
        "stem_channels": [4, 8, 12],
        "stem_kernels": [3, 5],
        "stem_stride": 2,
        "stages": [
            {"stride": 1, "channels": [4, 8, 12], "depth": [1, 2]},
            {"stride": 1, "channels": [8, 12, 16], "depth": [1, 2]},
            {"stride": 2, "channels": [12, 16, 24], "depth": [1, 2]},
        ],
        "kernel_sizes": [3, 5],
        "activation": "relu",
        "separable_choices": [0, 1],
        "pool_choices": [0, 1],
    }

    def _read_block_options(self, reader: OptionReader) -> None:
        super()._read_block_options(reader)
        d = self.defaults
        self.separable_choices = reader.integer_choices("separable_choices", d["separable_choices"], (0, 1), FLAGS)
        self.pool_choices = reader.integer_choices("pool_choices", d["pool_choices"], (0, 1), FLAGS)

    def _block_choices(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {
            **super()._block_choices(),
            "block_separable": ("separable", self.separable_choices),
            "block_pools": ("pool", self.pool_choices),
        }

    def _teacher_choice(self, field: str, choices: tuple[int, ...]) -> int:
        """The largest block is a plain convolution without a pool."""
        return min(choices) if field in ("block_separable", "block_pools") else max(choices)

    def _make_arch(self, **fields: Any) -> CnnArch:
        """The Arch, without the pools that a map smaller than the window cannot take."""
        fields["block_pools"] = possible_pools(
            as_pair(fields["resolution"]), as_pair(fields["stem_kernel"]), as_pair(fields["stem_stride"]),
            fields["stage_strides"], fields["block_kernels"], fields["block_pools"],
        )
        return CnnArch(**fields)

    def _block_layers(self, arch: CnnArch, slot: BlockSlot) -> BlockSpec:
        kernel = arch.block_kernels[slot.stage][slot.index]
        activation = ACTIVATIONS[arch.activation]
        if arch.block_separable[slot.stage][slot.index]:
            block = depthwise_separable(slot, kernel, activation)
        else:
            block = plain_convolution(slot, kernel, activation)
        if arch.block_pools[slot.stage][slot.index]:
            block = with_max_pool(block, slot.out_channels)
        return block
