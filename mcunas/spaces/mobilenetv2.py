"""``mobilenetv2``: an inverted-residual space in the spirit of MCUNet / ProxylessNAS.

Network: 3x3 stem conv (ReLU6) -> stages of inverted-residual blocks -> MEAN -> linear.
Searched: input resolution, stem width, width and depth of each stage, and per block the
expansion ratio and depthwise kernel size. Stage strides are fixed by the options.
Block string stage token: ``ir_r{depth}_k{kernels}_e{expansions}_s{stride}_c{channels}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from mcunas.spaces.arch import EXPANSION_RANGE, BlockSlot, StagedArch, check_block_table, stage_digits
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.graph_builder import GraphBuilder
from mcunas.spaces.options import OptionReader

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class MobileNetV2Arch(StagedArch):
    """A :class:`StagedArch` of inverted-residual blocks.

    Attributes:
        block_expansions: per stage, the expansion ratio of each block (hidden channels =
            input channels x ratio; ratio 1 has no expansion convolution).
    """

    space: ClassVar[str] = "mobilenetv2"
    block_prefix: ClassVar[str] = "ir"

    block_expansions: tuple[tuple[int, ...], ...]

    def _validate(self) -> None:
        super()._validate()
        check_block_table(self.space, "block_expansions", self.block_expansions, self.depths, EXPANSION_RANGE)

    def _stage_extra(self, stage: int) -> str:
        return f"_e{stage_digits(self.block_expansions[stage])}"


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

    def _build_block(self, arch: MobileNetV2Arch, slot: BlockSlot) -> "nn.Module":
        from mcunas.spaces.layers import InvertedResidual

        return InvertedResidual(
            slot.in_channels,
            slot.out_channels,
            arch.block_kernels[slot.stage][slot.index],
            slot.stride,
            arch.block_expansions[slot.stage][slot.index],
            slot.residual,
        )

    def _emit_block(self, builder: GraphBuilder, x: int, arch: MobileNetV2Arch, slot: BlockSlot) -> int:
        kernel = arch.block_kernels[slot.stage][slot.index]
        expansion = arch.block_expansions[slot.stage][slot.index]
        name = slot.name
        out = x
        if expansion != 1:
            out = builder.conv2d(out, slot.in_channels * expansion, 1, 1, "RELU6", f"{name}.expand")
        out = builder.depthwise_conv2d(out, kernel, slot.stride, "RELU6", f"{name}.depthwise")
        out = builder.conv2d(out, slot.out_channels, 1, 1, "NONE", f"{name}.project")
        if slot.residual:
            out = builder.add(out, x, f"{name}.add")
        return out
