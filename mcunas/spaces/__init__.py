"""Search spaces: sample architectures (Optuna), build them (PyTorch), describe them (op graph).

``get_space(name, **options)`` returns a space; its Arch values are frozen dataclasses that
round-trip through JSON with ``Arch.to_dict()`` / :func:`arch_from_dict`. Importing this
package imports neither torch nor optuna.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcunas.errors import ArchitectureError, ConfigError
from mcunas.spaces.arch import StagedArch
from mcunas.spaces.base import StagedSpace
from mcunas.spaces.mobilenetv1 import MobileNetV1Arch, MobileNetV1Space
from mcunas.spaces.mobilenetv2 import MobileNetV2Arch, MobileNetV2Space

Arch = StagedArch
Space = StagedSpace

_SPACES: dict[str, type[StagedSpace[Any]]] = {
    MobileNetV2Space.name: MobileNetV2Space,
    MobileNetV1Space.name: MobileNetV1Space,
}
SPACE_NAMES: tuple[str, ...] = tuple(sorted(_SPACES))


def get_space(name: str, **options: Any) -> StagedSpace[Any]:
    """The space ``name`` with ``options`` (see the space class); ConfigError names a bad key."""
    if name not in _SPACES:
        raise ConfigError(f"name: unknown space {name!r}; allowed: {', '.join(SPACE_NAMES)}")
    return _SPACES[name](**options)


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


def load_arch(path: str | Path) -> StagedArch:
    """Read an architecture JSON file (``arch.json``); errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArchitectureError(f"{path}: no such architecture file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ArchitectureError(f"{path}: cannot read architecture file: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ArchitectureError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    try:
        return arch_from_dict(data)
    except ArchitectureError as error:
        raise ArchitectureError(f"{path}: {error}") from None


__all__ = [
    "SPACE_NAMES",
    "Arch",
    "MobileNetV1Arch",
    "MobileNetV1Space",
    "MobileNetV2Arch",
    "MobileNetV2Space",
    "Space",
    "arch_from_dict",
    "get_space",
    "load_arch",
]
