"""Building blocks of the experiment schema, shared by the packages that own a config section.

Every section is a :class:`Section` (pydantic v2): unknown keys are errors and values are not
silently coerced. Relative paths are resolved against the config file's folder, which
:func:`mcunas.config.parse_experiment` passes as the validation context ``base_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    """A config section: unknown keys are errors, values are not silently coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Resolve a relative path against ``context["base_dir"]`` (the config file's folder)."""
    if value is None:
        return None
    value = value.expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if base_dir is not None and not value.is_absolute():
        value = Path(os.path.normpath(Path(base_dir) / value))
    return value
