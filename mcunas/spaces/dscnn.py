"""``dscnn``: a DS-CNN keyword-spotting space (MLPerf Tiny KWS, "Hello Edge") on MFCC inputs.

Network: a full convolution with a rectangular kernel and stride over the
``frames x coefficients x channels`` input (the MLPerf Tiny model: 10x4, stride 2x2 on 49x10x1)
-> stages of depthwise-separable blocks (kxk depthwise + BN + act, 1x1 pointwise + BN + act)
-> MEAN -> linear. The input size is an option (``input_size: [frames, coefficients]``, set
from the dataset's front end like ``input_channels``), not searched. Searched: the stem width,
kernel (``stem_kernels``: [height, width] choices) and stride (``stem_strides``), the width and
depth of each stage, and per block the depthwise kernel size. The activation (``relu`` |
``relu6``) is an option recorded in the Arch. The default space holds the MLPerf Tiny DS-CNN
(64 channels, 10x4 stride 2x2 stem, four 3x3 blocks of 64).

Geometry fields of the Arch are pairs: ``resolution`` = (frames, coefficients), ``stem_kernel``
and ``stem_stride`` = (height, width); a stem kernel is never larger than the input. Optuna
parameters: ``stem_channels``, ``stem_kernel`` and ``stem_stride`` (labels ``"10x4"``), then the
stages' parameters as in every staged space. Block string: ``r{frames}x{coefficients}_in{c}``,
the activation token, ``stem_k{h}x{w}_s{h}x{w}_c{c}``, stage tokens
``dsc_r{depth}_k{kernels}_s{stride}_c{channels}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from mcunas.errors import ConfigError
from mcunas.spaces.arch import INPUT_SIDE_RANGE, STEM_KERNEL_SIDE_RANGE, STRIDES, Size
from mcunas.spaces.mobilenetv1 import MobileNetV1Arch, MobileNetV1Space
from mcunas.spaces.options import OptionReader

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class DsCnnArch(MobileNetV1Arch):
    """A :class:`~mcunas.spaces.mobilenetv1.MobileNetV1Arch` with rectangular geometry: the
    ``resolution``, ``stem_kernel`` and ``stem_stride`` fields are (height, width) pairs."""

    space: ClassVar[str] = "dscnn"
    block_prefix: ClassVar[str] = "dsc"
    rectangular: ClassVar[bool] = True


def _label(pair: tuple[int, int]) -> str:
    """The Optuna choice of a pair, as in block strings: ``"10x4"``."""
    return f"{pair[0]}x{pair[1]}"


class DsCnnSpace(MobileNetV1Space):
    """Options beyond :class:`~mcunas.spaces.base.StagedSpace`'s, replacing its ``resolutions``,
    ``stem_kernels`` and ``stem_stride``:

        input_size: [frames, coefficients] of the input (not searched).
        stem_kernels: candidate [height, width] stem kernels (odd or even, at most the input).
        stem_strides: candidate [height, width] stem strides (1 or 2 each).
        activation: ``relu`` | ``relu6``.
    """

    name: ClassVar[str] = "dscnn"
    arch_type = DsCnnArch
    defaults: ClassVar[Mapping[str, Any]] = {
        "input_channels": 1,
        "num_classes": 12,
        "input_size": [49, 10],
        "stem_channels": [32, 48, 64],
        "stem_kernels": [[10, 4], [8, 4], [6, 4]],
        "stem_strides": [[2, 2]],
        "stages": [
            {"stride": 1, "channels": [32, 48, 64], "depth": [1, 2]},
            {"stride": 1, "channels": [32, 48, 64, 96], "depth": [1, 3]},
        ],
        "kernel_sizes": [3, 5],
        "activation": "relu",
    }

    def _read_geometry(self, reader: OptionReader) -> None:
        d = self.defaults
        self.input_size = reader.pair("input_size", d["input_size"], INPUT_SIDE_RANGE)
        self.stem_kernels = reader.pair_choices("stem_kernels", d["stem_kernels"], STEM_KERNEL_SIDE_RANGE)
        self.stem_strides = reader.pair_choices("stem_strides", d["stem_strides"], (1, 2), STRIDES)
        for i, kernel in enumerate(self.stem_kernels):
            if kernel[0] > self.input_size[0] or kernel[1] > self.input_size[1]:
                raise ConfigError(f"stem_kernels[{i}]: larger than input_size {list(self.input_size)}, got {list(kernel)}")

    def _sample_input(self, trial: "optuna.trial.BaseTrial") -> Size:
        return self.input_size

    def _sample_stem(self, trial: "optuna.trial.BaseTrial") -> dict[str, Size]:
        kernels = {_label(kernel): kernel for kernel in self.stem_kernels}
        strides = {_label(stride): stride for stride in self.stem_strides}
        return {
            "stem_kernel": kernels[trial.suggest_categorical("stem_kernel", list(kernels))],
            "stem_stride": strides[trial.suggest_categorical("stem_stride", list(strides))],
        }

    def _largest_stem(self) -> dict[str, Size]:
        """The kernel of the largest area and the stride of the smallest."""
        return {
            "stem_kernel": max(self.stem_kernels, key=lambda kernel: kernel[0] * kernel[1]),
            "stem_stride": min(self.stem_strides, key=lambda stride: stride[0] * stride[1]),
        }

    @classmethod
    def options_for_input(cls, options: Mapping[str, Any], input_size: tuple[int, int]) -> dict[str, Any]:
        """``options`` with ``input_size`` set to the data's (frames, coefficients).

        Raises:
            ConfigError: ``options`` set another ``input_size`` (the data is not resized).
        """
        given = options.get("input_size")
        if given is not None and list(given) != list(input_size):
            raise ConfigError(f"input_size: {list(given)} is not the dataset's input {list(input_size)} "
                              f"(leave it out to take the dataset's)")
        return {**options, "input_size": list(input_size)}
