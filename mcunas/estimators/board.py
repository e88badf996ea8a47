"""The board catalog: one YAML file per board in ``mcunas/estimators/boards/``.

A board file is data (read with ``yaml.safe_load``) with these keys:

===================== ========================================================================
``name``              slug used on the command line and in configs, e.g. ``nucleo-l4r5zi``
``display_name``      human name of the board
``mcu``               microcontroller part number
``core``              core family running TFLite Micro, one of :data:`KNOWN_CORES`
``clock_mhz``         core clock the latency is estimated at (MHz)
``sram_bytes``        the SRAM the tensor arena and the reserve must share: the largest
                      contiguous region the arena can be placed in (bytes)
``flash_bytes``       on-chip (or, where stated, external XIP) flash (bytes)
``sram_reserve_bytes`` SRAM that is not the arena: stack, heap, TFLM interpreter state outside
                      the arena, the application's buffers (bytes)
``flash_reserve_bytes`` flash for everything except the model and the TFLM runtime code:
                      bootloader, startup, HAL/RTOS, drivers, application (bytes). The TFLM
                      runtime code is *not* in the reserve: it is estimated per model
                      (:func:`mcunas.estimators.flash.runtime_code_bytes`) and counted in
                      ``Cost.flash_bytes``.
``latency_supported`` optional, default true; false where no honest cycle model exists
``latency_note``      optional: why latency is unsupported, or a caveat
``memory``            optional mapping: the memory-system facts the cycle model uses
                      (:class:`MemorySystem`, keys below); absent: zero-wait memory is assumed
``sources``           optional mapping figure -> URL or document the figure comes from
``notes``             optional free text
===================== ========================================================================

``memory`` keys (each optional; cite each in ``sources`` as ``memory.<key>``):

=========================== ==================================================================
``flash_read_cycles``       core clock cycles one read of the code flash takes at ``clock_mhz``
                            (flash wait states + 1, times core clock / flash clock)
``flash_read_bits``         bits one flash read returns (the flash interface width)
``instruction_cache_bytes`` cache between the core and the code flash: ST's ART accelerator,
                            an L1 instruction cache, an XIP cache (bytes; 0: none)
``data_cache_bytes``        cache that keeps weights read more than once (bytes; 0: none)
``code_in``                 where the firmware executes from: ``flash`` or ``ram``
``weights_in``              where the model's weights are read from: ``flash`` or ``ram``
``arena_in``                where the tensor arena lives: ``sram`` or ``tcm`` (documentation)
=========================== ==================================================================

A Board is plain data: the limits a model must meet on it, and the check of a cost against
them, are in :mod:`mcunas.estimators.budget`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mcunas.errors import BoardError
from mcunas.io import read_user_text
from mcunas.estimators.packaged import board_files, profile_names

# Core families a board may name. Latency needs a profile for the core (see latency.py).
KNOWN_CORES: tuple[str, ...] = (
    "cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-m85", "xtensa-lx7",
)
# Places a firmware keeps code, weights and the arena (MemorySystem fields).
CODE_PLACES: tuple[str, ...] = ("flash", "ram")
ARENA_PLACES: tuple[str, ...] = ("sram", "tcm")

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_REQUIRED = ("name", "display_name", "mcu", "core", "clock_mhz", "sram_bytes", "flash_bytes",
             "sram_reserve_bytes", "flash_reserve_bytes")
_OPTIONAL = ("latency_supported", "latency_note", "memory", "sources", "notes")
_MEMORY_INTS = ("flash_read_cycles", "flash_read_bits", "instruction_cache_bytes", "data_cache_bytes")
_MEMORY_PLACES = {"code_in": CODE_PLACES, "weights_in": CODE_PLACES, "arena_in": ARENA_PLACES}


@dataclass(frozen=True)
class MemorySystem:
    """Where a board's firmware keeps code, weights and arena, and what a flash read costs.

    Plain data read from a board file's ``memory`` mapping (see the module docstring); the
    latency model (:mod:`mcunas.estimators.latency`) turns it into stall cycles. ``None`` for
    the flash figures means "not described": no flash stalls are modelled.
    """

    flash_read_cycles: int | None = None
    flash_read_bits: int | None = None
    instruction_cache_bytes: int = 0
    data_cache_bytes: int = 0
    code_in: str = "flash"
    weights_in: str = "flash"
    arena_in: str = "sram"

    @property
    def flash_cycles_per_byte(self) -> float:
        """Core cycles per byte streamed from flash (0 when the flash is not described)."""
        if self.flash_read_cycles is None or not self.flash_read_bits:
            return 0.0
        return self.flash_read_cycles / (self.flash_read_bits / 8)


@dataclass(frozen=True)
class Board:
    """One board of the catalog (or a user's board file); see the module docstring for fields."""

    name: str
    display_name: str
    mcu: str
    core: str
    clock_mhz: float
    sram_bytes: int
    flash_bytes: int
    sram_reserve_bytes: int
    flash_reserve_bytes: int
    latency_supported: bool = True
    latency_note: str = ""
    memory: MemorySystem = MemorySystem()
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    notes: str = field(default="", compare=False)
    path: str = field(default="", compare=False)

    @property
    def arena_budget_bytes(self) -> int:
        """The largest tensor arena that fits: SRAM minus the reserve (bytes)."""
        return self.sram_bytes - self.sram_reserve_bytes

    @property
    def flash_budget_bytes(self) -> int:
        """Flash available to model + TFLM runtime code: flash minus the reserve (bytes)."""
        return self.flash_bytes - self.flash_reserve_bytes


@lru_cache(maxsize=1)
def _catalog() -> dict[str, Board]:
    boards = {}
    for entry in board_files():
        board = _parse(entry.read_text(encoding="utf-8"), f"boards/{entry.name}")
        boards[board.name] = board
    return boards


def list_boards() -> list[Board]:
    """The packaged boards, sorted by name."""
    return list(_catalog().values())


def load_board(name_or_path: str | Path | Board) -> Board:
    """A catalog board by name, or a board YAML file by path (``.yaml``/``.yml`` or an existing file).

    Raises BoardError for an unknown name (listing the known ones) or a malformed file (naming
    the file and the key).
    """
    if isinstance(name_or_path, Board):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return _parse(read_user_text(path, BoardError, "board file"), str(path))
    board = _catalog().get(text)
    if board is None:
        raise BoardError(f"unknown board '{text}'; known boards: {', '.join(_catalog())} (or a path to a board .yaml file)")
    return board


def _parse(content: str, source: str) -> Board:
    import yaml

    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BoardError(f"board file {source}: invalid YAML{where}") from None
    if not isinstance(data, dict):
        raise BoardError(f"board file {source}: expected a mapping of keys, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _REQUIRED and k not in _OPTIONAL)
    if unknown:
        raise BoardError(f"board file {source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise BoardError(f"board file {source}: missing key(s) {', '.join(missing)}")

    def fail(key: str, why: str) -> BoardError:
        return BoardError(f"board file {source}: '{key}' {why}, got {data.get(key)!r}")

    for key in ("name", "display_name", "mcu", "core"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(key, "must be a non-empty string")
    if not _SLUG.match(data["name"]):
        raise fail("name", "must be a slug of lower-case letters, digits and '-'")
    if data["core"] not in KNOWN_CORES:
        raise fail("core", f"must be one of {', '.join(KNOWN_CORES)}")
    clock = data["clock_mhz"]
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not clock > 0:
        raise fail("clock_mhz", "must be a positive number (MHz)")
    for key in ("sram_bytes", "flash_bytes"):
        if isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] <= 0:
            raise fail(key, "must be a positive integer (bytes)")
    for key, total in (("sram_reserve_bytes", "sram_bytes"), ("flash_reserve_bytes", "flash_bytes")):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(key, "must be an integer >= 0 (bytes)")
        if value >= data[total]:
            raise fail(key, f"must be smaller than {total} ({data[total]})")
    supported = data.get("latency_supported", True)
    if not isinstance(supported, bool):
        raise fail("latency_supported", "must be true or false")
    for key in ("latency_note", "notes"):
        if key in data and not isinstance(data[key], str):
            raise fail(key, "must be a string")
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
        raise fail("sources", "must be a mapping of figure name to a URL or document")
    if supported:
        if not any(name.startswith(f"{data['core']}-tflm-") for name in profile_names()):
            raise fail("latency_supported", f"is true but there is no latency profile for core {data['core']}; set it to false")
    note = data.get("latency_note", "") or ("" if supported else f"no cycle model for core {data['core']}")
    memory = _parse_memory(data.get("memory", {}), source)
    return Board(
        name=data["name"],
        display_name=data["display_name"].strip(),
        mcu=data["mcu"].strip(),
        core=data["core"],
        clock_mhz=float(clock),
        sram_bytes=data["sram_bytes"],
        flash_bytes=data["flash_bytes"],
        sram_reserve_bytes=data["sram_reserve_bytes"],
        flash_reserve_bytes=data["flash_reserve_bytes"],
        latency_supported=supported,
        latency_note=note,
        memory=memory,
        sources=dict(sources),
        notes=data.get("notes", ""),
        path=source,
    )


def _parse_memory(data: object, source: str) -> MemorySystem:
    """The ``memory`` mapping of a board file as a :class:`MemorySystem`; BoardError names the key."""
    if not isinstance(data, dict):
        raise BoardError(f"board file {source}: 'memory' must be a mapping of memory-system facts, got {data!r}")
    allowed = _MEMORY_INTS + tuple(_MEMORY_PLACES)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise BoardError(f"board file {source}: unknown key(s) memory.{', memory.'.join(unknown)}; allowed: {', '.join(allowed)}")
    for key in _MEMORY_INTS:
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise BoardError(f"board file {source}: 'memory.{key}' must be an integer >= 0, got {value!r}")
    for key, places in _MEMORY_PLACES.items():
        if key in data and data[key] not in places:
            raise BoardError(f"board file {source}: 'memory.{key}' must be one of {', '.join(places)}, got {data[key]!r}")
    if (data.get("flash_read_cycles") is None) != (data.get("flash_read_bits") is None):
        raise BoardError(f"board file {source}: 'memory.flash_read_cycles' and 'memory.flash_read_bits' go together")
    if data.get("flash_read_bits") == 0:
        raise BoardError(f"board file {source}: 'memory.flash_read_bits' must be > 0")
    return MemorySystem(**data)
