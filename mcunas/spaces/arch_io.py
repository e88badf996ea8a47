"""Reading architectures: ``arch.json`` files and command-line texts (a file or a block string)."""

from __future__ import annotations

import re
from pathlib import Path

from mcunas.errors import ArchitectureError
from mcunas.graph.ir import Graph
from mcunas.io import read_user_json
from mcunas.spaces.arch import StagedArch
from mcunas.spaces.notation import parse_block_string
from mcunas.spaces.registry import arch_from_dict, get_space

# How a block string starts: the input token ``r{size}_...``.
_BLOCK_STRING_START = re.compile(r"r[0-9]")


def load_arch(path: str | Path) -> StagedArch:
    """Read an architecture JSON file (``arch.json``); errors name the file."""
    path = Path(path)
    data = read_user_json(path, ArchitectureError, "architecture file")
    try:
        return arch_from_dict(data)
    except ArchitectureError as error:
        raise ArchitectureError(f"{path}: {error}") from None


class NotAnArchError(ArchitectureError):
    """A command-line text is neither an ARCH.json path nor a block string (see :func:`read_arch`)."""


def read_arch(text: str) -> StagedArch:
    """The architecture of a command-line argument: an architecture file when ``text`` ends with
    ``.json``, else a block string when it starts as one does (``r`` and a digit, the input
    token of :func:`parse_block_string`).

    Raises:
        NotAnArchError: ``text`` is neither.
        ArchitectureError: the file or the block string is invalid (naming the file or the token).
    """
    if text.lower().endswith(".json"):
        return load_arch(text)
    if _BLOCK_STRING_START.match(text):
        return parse_block_string(text)
    raise NotAnArchError(
        f"{text}: expected an architecture file (a name ending in .json) or a block string "
        "(starting with the input token r{size}_in{channels})"
    )


def arch_graph(text: str) -> Graph:
    """The op graph (``Space.graph``) of an ARCH.json path or a block string (see :func:`read_arch`)."""
    arch = read_arch(text)
    return get_space(arch.space).graph(arch)
