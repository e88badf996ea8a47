"""``mobilenetv1``: a space of depthwise-separable blocks on square images.

Network: stem conv -> stages of (kxk depthwise + BN + act, 1x1 pointwise + BN + act) blocks ->
MEAN -> linear. Searched: input resolution, stem width (and kernel if several are given), width
and depth of each stage, and per block the depthwise kernel size. The activation (``relu`` or
``relu6``) is an option recorded in the Arch. Defaults suit 1-channel inputs (spectrograms,
MNIST). Block string: the activation token (``relu`` | ``relu6``) after the input token, stage
tokens ``ds_r{depth}_k{kernels}_s{stride}_c{channels}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from mcunas.spaces.arch import ArchFieldError, BlockSlot, StagedArch
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.blocks import depthwise_separable
from mcunas.spaces.options import OptionReader
from mcunas.spaces.spec import BlockSpec

# Option/Arch value -> fused activation name of the graph IR (and of LayerSpec.activation).
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
            raise ArchFieldError(
                f"{self.space} arch field 'activation': expected one of {list(ACTIVATIONS)}, got {self.activation!r}",
                "activation",
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

    def _block_layers(self, arch: MobileNetV1Arch, slot: BlockSlot) -> BlockSpec:
        return depthwise_separable(slot, arch.block_kernels[slot.stage][slot.index], ACTIVATIONS[arch.activation])
