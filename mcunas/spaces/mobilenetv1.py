"""``mobilenetv1``: a DS-CNN style space of depthwise-separable blocks.

Network: stem conv -> stages of (kxk depthwise + BN + act, 1x1 pointwise + BN + act) blocks ->
MEAN -> linear. Searched: input resolution, stem width (and kernel if several are given), width
and depth of each stage, and per block the depthwise kernel size. The activation (``relu`` or
``relu6``) is an option recorded in the Arch. Defaults suit 1-channel inputs (spectrograms,
MNIST). Block string stage token: ``ds_r{depth}_k{kernels}_s{stride}_c{channels}``; the
activation is not part of the block string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from mcunas.errors import ArchitectureError
from mcunas.spaces.arch import BlockSlot, StagedArch
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.graph_builder import GraphBuilder
from mcunas.spaces.options import OptionReader

if TYPE_CHECKING:
    from torch import nn

# Option/Arch value -> fused activation name of the graph IR (and of mcunas.spaces.layers).
ACTIVATIONS: dict[str, str] = {"relu": "RELU", "relu6": "RELU6"}


@dataclass(frozen=True)
class MobileNetV1Arch(StagedArch):
    """A :class:`StagedArch` of depthwise-separable blocks.

    Attributes:
        activation: ``"relu"`` or ``"relu6"``, after every convolution.
    """

    space: ClassVar[str] = "mobilenetv1"
    block_prefix: ClassVar[str] = "ds"

    activation: str

    def _validate(self) -> None:
        super()._validate()
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ArchitectureError(
                f"{self.space} arch field 'activation': expected one of {list(ACTIVATIONS)}, got {self.activation!r}"
            )


class MobileNetV1Space(StagedSpace[MobileNetV1Arch]):
    """Options beyond :class:`StagedSpace`'s: ``activation`` (``relu`` | ``relu6``)."""

    name: ClassVar[str] = "mobilenetv1"
    arch_type = MobileNetV1Arch
    defaults: ClassVar[Mapping[str, Any]] = {
        "input_channels": 1,
        "num_classes": 10,
        "resolutions": [24, 32, 48, 64],
        "stem_channels": [8, 16, 24, 32],
        "stem_kernels": [3],
        "stem_stride": 2,
        "stages": [
            {"stride": 1, "channels": [16, 24, 32], "depth": [1, 2]},
            {"stride": 2, "channels": [32, 48, 64], "depth": [1, 2]},
            {"stride": 2, "channels": [64, 96, 128], "depth": [1, 3]},
            {"stride": 2, "channels": [128, 160, 192, 256], "depth": [1, 2]},
        ],
        "kernel_sizes": [3, 5],
        "activation": "relu",
    }

    def _read_block_options(self, reader: OptionReader) -> None:
        self.activation = reader.string("activation", self.defaults["activation"], tuple(ACTIVATIONS))

    def _fixed_fields(self) -> dict[str, Any]:
        return {"activation": self.activation}

    def _stem_activation(self, arch: MobileNetV1Arch) -> str:
        return ACTIVATIONS[arch.activation]

    def _build_block(self, arch: MobileNetV1Arch, slot: BlockSlot) -> "nn.Module":
        from mcunas.spaces.layers import DepthwiseSeparable

        kernel = arch.block_kernels[slot.stage][slot.index]
        return DepthwiseSeparable(slot.in_channels, slot.out_channels, kernel, slot.stride, ACTIVATIONS[arch.activation])

    def _emit_block(self, builder: GraphBuilder, x: int, arch: MobileNetV1Arch, slot: BlockSlot) -> int:
        kernel = arch.block_kernels[slot.stage][slot.index]
        activation = ACTIVATIONS[arch.activation]
        x = builder.depthwise_conv2d(x, kernel, slot.stride, activation, f"{slot.name}.depthwise")
        return builder.conv2d(x, slot.out_channels, 1, 1, activation, f"{slot.name}.pointwise")
