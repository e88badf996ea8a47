"""The data files packaged with the estimators: board files and latency profiles.

``boards/<name>.yaml`` (one per board, read by :mod:`mcunas.estimators.board`) and
``profiles/<core>-<runtime>.json`` (read by :mod:`mcunas.estimators.latency`). This module only
lists and reads them; it imports nothing else of mcunas, so that the board catalog can check a
board's core against the profiles without importing the latency model.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable


def _folder(name: str) -> Traversable:
    return resources.files("mcunas.estimators") / name


def board_files() -> list[Traversable]:
    """The packaged board YAML files, sorted by file name."""
    return sorted((p for p in _folder("boards").iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)


@lru_cache(maxsize=None)
def profile_names() -> tuple[str, ...]:
    """Names ``<core>-<runtime>`` of the packaged latency profiles, sorted (read once: every
    estimate asks)."""
    return tuple(sorted(p.name[: -len(".json")] for p in _folder("profiles").iterdir() if p.name.endswith(".json")))


def profile_file(name: str) -> Traversable:
    """The packaged profile ``<core>-<runtime>.json`` (may not exist: check ``is_file()``)."""
    return _folder("profiles") / f"{name}.json"
