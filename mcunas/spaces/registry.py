"""The spaces by name: the one list of space names (``SPACE_NAMES``) and lookups by name."""

from __future__ import annotations

from typing import Any, Mapping

from mcunas.errors import ArchitectureError, ConfigError
from mcunas.spaces.arch import StagedArch
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.cnn import CnnSpace
from mcunas.spaces.dscnn import DsCnnSpace
from mcunas.spaces.mobilenetv1 import MobileNetV1Space
from mcunas.spaces.mobilenetv2 import MobileNetV2Space

_SPACES: dict[str, type[StagedSpace[Any]]] = {
    space.name: space for space in (MobileNetV2Space, MobileNetV1Space, DsCnnSpace, CnnSpace)
}
SPACE_NAMES: tuple[str, ...] = tuple(sorted(_SPACES))


def _space_type(name: str) -> type[StagedSpace[Any]]:
    if name not in _SPACES:
        raise ConfigError(f"name: unknown space {name!r}; allowed: {', '.join(SPACE_NAMES)}")
    return _SPACES[name]


def get_space(name: str, **options: Any) -> StagedSpace[Any]:
    """The space ``name`` with ``options`` (see the space class); ConfigError names a bad key."""
    return _space_type(name)(**options)


def space_for_input(name: str, options: Mapping[str, Any], data_input_size: tuple[int, int]) -> StagedSpace[Any]:
    """:func:`get_space` with the input fixed to the data's ``(height, width)`` unless ``options``
    choose it (see :meth:`StagedSpace.options_for_input`); ConfigError names what does not fit."""
    space = _space_type(name)
    return space(**space.options_for_input(options, data_input_size))


def arch_types() -> tuple[type[StagedArch], ...]:
    """The Arch type of every space, in ``SPACE_NAMES`` order."""
    return tuple(_SPACES[name].arch_type for name in SPACE_NAMES)


def arch_from_dict(data: Any) -> StagedArch:
    """Rebuild an Arch from its ``to_dict()`` form, dispatching on ``data["space"]``.

    Raises ArchitectureError naming the field that is missing, unknown or invalid.
    """
    if not isinstance(data, dict):
        raise ArchitectureError(f"an architecture must be a JSON object, got {type(data).__name__}")
    space = data.get("space")
    if space not in _SPACES:
        raise ArchitectureError(f"arch field 'space': expected one of {list(SPACE_NAMES)}, got {space!r}")
    return _SPACES[space].arch_type.from_dict(data)
