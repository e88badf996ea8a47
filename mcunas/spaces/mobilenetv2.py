"""``mobilenetv2``: an inverted-residual space in the spirit of MCUNet / ProxylessNAS.

Network: 3x3 stem conv (ReLU6) -> stages of inverted-residual blocks -> MEAN -> linear.
Searched: input resolution, stem width, width and depth of each stage, and per block the
expansion ratio and depthwise kernel size. Stage strides are fixed by the options.
Block string stage token: ``ir_r{depth}_k{kernels}_e{expansions}_s{stride}_c{channels}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from mcunas.spaces.arch import EXPANSION_RANGE, BlockSlot, StagedArch, check_block_table
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.blocks import inverted_residual
from mcunas.spaces.options import OptionReader
from mcunas.spaces.spec import BlockSpec


@dataclass(frozen=True)
class MobileNetV2Arch(StagedArch):
    """A :class:`StagedArch` of inverted-residual blocks.

    Attributes:
        block_expansions: per stage, the expansion ratio of each block (hidden channels =
            input channels x ratio; ratio 1 has no expansion convolution).
    """

    space: ClassVar[str] = "mobilenetv2"
    block_prefix: ClassVar[str] = "ir"
    block_fields: ClassVar[tuple[tuple[str, str], ...]] = (("k", "block_kernels"), ("e", "block_expansions"))

    block_expansions: tuple[tuple[int, ...], ...]

    def _validate(self) -> None:
        super()._validate()
        check_block_table(self.space, "block_expansions", self.block_expansions, self.depths, EXPANSION_RANGE)


class MobileNetV2Space(StagedSpace[MobileNetV2Arch]):
    """Options beyond :class:`StagedSpace`'s: ``expand_ratios`` (candidate expansion ratios)."""

    name: ClassVar[str] = "mobilenetv2"
    arch_type = MobileNetV2Arch
    defaults: ClassVar[Mapping[str, Any]] = {
        "input_channels": 3,
        "num_classes": 10,
        "resolutions": [32, 48, 64, 96],
        "stem_channels": [8, 16, 24],
        "stem_kernels": [3],
        "stem_stride": 2,
        "stages": [
            {"stride": 1, "channels": [8, 16], "depth": [1, 1]},
            {"stride": 2, "channels": [16, 24], "depth": [1, 3]},
            {"stride": 2, "channels": [24, 32, 40], "depth": [1, 3]},
            {"stride": 2, "channels": [40, 48, 64], "depth": [1, 4]},
            {"stride": 1, "channels": [48, 64, 96], "depth": [1, 3]},
            {"stride": 2, "channels": [96, 128, 160], "depth": [1, 3]},
        ],
        "kernel_sizes": [3, 5, 7],
        "expand_ratios": [1, 3, 4, 6],
    }

    def _read_block_options(self, reader: OptionReader) -> None:
        self.expand_ratios = reader.integer_choices("expand_ratios", self.defaults["expand_ratios"], EXPANSION_RANGE)

    def _block_choices(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {**super()._block_choices(), "block_expansions": ("expansion", self.expand_ratios)}

    def _stem_activation(self, arch: MobileNetV2Arch) -> str:
        return "RELU6"

    def _block_layers(self, arch: MobileNetV2Arch, slot: BlockSlot) -> BlockSpec:
        return inverted_residual(
            slot, arch.block_kernels[slot.stage][slot.index], arch.block_expansions[slot.stage][slot.index]
        )
