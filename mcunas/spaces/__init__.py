"""Search spaces: sample architectures (Optuna), build them (PyTorch), describe them (op graph).

``get_space(name, **options)`` returns a space; its Arch values are frozen dataclasses that
round-trip through JSON with ``Arch.to_dict()`` / :func:`arch_from_dict` and through block
strings with ``Arch.block_string()`` / :func:`parse_block_string`. ``Space.spec(arch)`` lists an
architecture's layers once; ``Space.build`` and ``Space.graph`` are made from that list.
Importing this package imports neither torch nor optuna.
"""

from __future__ import annotations

from mcunas.spaces.arch import ArchFieldError, StagedArch
from mcunas.spaces.arch_io import NotAnArchError, arch_graph, load_arch, read_arch
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.cnn import CnnArch, CnnSpace
from mcunas.spaces.dscnn import DsCnnArch, DsCnnSpace
from mcunas.spaces.mobilenetv1 import MobileNetV1Arch, MobileNetV1Space
from mcunas.spaces.mobilenetv2 import MobileNetV2Arch, MobileNetV2Space
from mcunas.spaces.notation import parse_block_string
from mcunas.spaces.registry import SPACE_NAMES, arch_from_dict, get_space, space_for_input
from mcunas.spaces.spec import BlockSpec, LayerSpec, NetSpec

Arch = StagedArch
Space = StagedSpace


__all__ = [
    "SPACE_NAMES",
    "Arch",
    "ArchFieldError",
    "BlockSpec",
    "CnnArch",
    "CnnSpace",
    "DsCnnArch",
    "DsCnnSpace",
    "LayerSpec",
    "MobileNetV1Arch",
    "MobileNetV1Space",
    "MobileNetV2Arch",
    "MobileNetV2Space",
    "NetSpec",
    "NotAnArchError",
    "Space",
    "arch_from_dict",
    "arch_graph",
    "get_space",
    "load_arch",
    "parse_block_string",
    "read_arch",
    "space_for_input",
]
