"""Latency model: instructions per op x cycles per instruction on a board, with an interval.

Two levels, both fitted (``benchmarks/latency_fit.py``, data and residuals in each profile's
``provenance``):

1. **Instructions per op** for a kernel library (:mod:`mcunas.estimators.kernels` decides the
   kernel and its terms): ``I(op) = sum_t a[class, t] * units_t`` -- Cortex-M4 instructions of
   current TFLM/CMSIS-NN builds, fitted per class to executed-instruction counts (QEMU).
2. **Cycles** on a board::

       cycles(op) = scale[class] * ( I(op) * (cpi + s_code * fetch[class]) + s_data * W(op) )

   ``cpi`` is the core's cycles per (Cortex-M4-equivalent) instruction with memory that never
   waits; ``s = flash_read_cycles / (flash_read_bits / 8)`` is the board's cost of streaming
   one byte from flash (board file, ``memory``). ``s_code = s`` when code executes from flash
   behind an instruction cache smaller than :data:`LOOP_CACHE_BYTES` (ST's ART accelerator),
   else 0; ``fetch[class]`` (bytes per instruction fetched from flash past that cache) is fitted
   for the convolution kernels, whose per-pixel code spans several functions, and is 0 for
   single-loop kernels. ``s_data = s`` when weights are read from flash: ``W(op)`` counts the
   weight bytes the kernel reads (its weight matrix once per pass; once in all when the matrix
   fits ``data_cache_bytes``). ``scale`` is 1 in packaged profiles; calibration to a real board
   fits it (one factor, or one per class from per-op tick logs).

Latency in ms is ``cycles / (clock_mhz * 1000)``, one inference, batch 1. The interval
``[latency / (1 + r_max), latency / (1 + r_min)]`` comes from the leave-one-out relative errors
``r`` of the profile's fit (``interval`` in the profile). Classes without instruction data carry
an ``assumed`` note; :class:`LatencyEstimate` lists the ops that rest on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache, reduce
from operator import add
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.errors import BoardError, ProfileError
from mcunas.estimators.kernels import CLASS_TERMS, LIBRARIES, op_signature, signature_terms
from mcunas.estimators.packaged import profile_file, profile_names
from mcunas.estimators.runtime import DEFAULT_RUNTIME, RUNTIMES, check_runtime
from mcunas.graph.ir import Graph
from mcunas.io import read_user_json

if TYPE_CHECKING:
    from mcunas.estimators.board import Board

SCHEMA = "mcunas-latency-profile/2"
# An instruction cache at least this large holds the hot loops of one kernel (assumption: the
# per-pixel code of a CMSIS-NN convolution -- im2col, matrix kernel, requantization -- spans
# 1-4 KB); smaller caches (ST's 1 KB ART accelerator) miss on it.
LOOP_CACHE_BYTES = 4096


@dataclass(frozen=True)
class ClassCost:
    """The cost of one kernel class in a profile.

    Attributes:
        instructions: instructions per unit of each term, in :data:`CLASS_TERMS` order.
        fetch_bytes_per_instruction: bytes of code fetched from flash past a small instruction
            cache, per instruction (see the module docstring); 0 for single-loop kernels.
        scale: calibration factor on the class's cycles (1 in packaged profiles).
        assumed: empty when fitted to instruction counts, else how the cost was derived.
    """

    instructions: tuple[float, ...]
    fetch_bytes_per_instruction: float = 0.0
    scale: float = 1.0
    assumed: str = ""


@dataclass(frozen=True)
class Interval:
    """Relative error range of the fit: measured = predicted / (1 + r), r_min <= 0 <= r_max."""

    r_min: float
    r_max: float
    basis: str

    @property
    def low_factor(self) -> float:
        return 1.0 / (1.0 + self.r_max)

    @property
    def high_factor(self) -> float:
        return 1.0 / (1.0 + self.r_min)


@dataclass(frozen=True)
class LatencyEstimate:
    """Predicted latency of one inference (ms) with its interval and the share that is assumed.

    Attributes:
        latency_ms: the point estimate.
        low_ms, high_ms: the interval (see :class:`Interval`).
        assumed_ops: ``"KIND (class) xN"`` for ops whose class has no instruction data.
        assumed_pct: share of ``latency_ms`` spent in those ops (percent).
    """

    latency_ms: float
    low_ms: float
    high_ms: float
    assumed_ops: tuple[str, ...] = ()
    assumed_pct: float = 0.0


@dataclass(frozen=True)
class _BoardCycles:
    """A profile's per-class cycle coefficients on one board, and the cycles of each op seen."""

    library: str
    coefficients: dict[str, tuple[float, ...]]
    weight_cycles_per_byte: dict[str, float]
    data_cache_bytes: int
    assumed: frozenset[str]
    ops: dict = field(default_factory=dict)  # op signature -> (class, cycles, assumed)

    def op_cost(self, signature: tuple) -> tuple[str, float, bool]:
        cached = self.ops.get(signature)
        if cached is None:
            terms = signature_terms(signature, self.library)
            cycles = sum([a * u for a, u in zip(self.coefficients[terms.op_class], terms.units)])
            if terms.weight_bytes:
                passes = 1 if terms.weight_bytes <= self.data_cache_bytes else terms.weight_passes
                cycles += self.weight_cycles_per_byte[terms.op_class] * terms.weight_bytes * passes
            cached = self.ops[signature] = (terms.op_class, cycles, terms.op_class in self.assumed)
        return cached


@dataclass(frozen=True)
class Profile:
    """Instruction and cycle coefficients of one core family with one runtime.

    Attributes:
        core: core family, e.g. ``cortex-m4``.
        runtime: one of :data:`RUNTIMES`.
        library: kernel library of the instruction model (one of :data:`LIBRARIES`).
        cycles_per_instruction: the core's cycles per instruction with zero-wait memory.
        classes: class -> :class:`ClassCost`, every class of the library.
        interval: the fit's relative error range.
        board: the board a calibrated profile was fitted on ("" for packaged profiles).
        provenance: how the numbers were obtained (data, method, assumptions, residuals);
            carried along, never interpreted.
    """

    core: str
    runtime: str
    library: str
    cycles_per_instruction: float
    classes: dict[str, ClassCost]
    interval: Interval
    board: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    _per_board: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _on(self, board: Board) -> _BoardCycles:
        cached = self._per_board.get(board)
        if cached is None:
            memory = board.memory
            per_byte = memory.flash_cycles_per_byte
            code = per_byte if memory.code_in == "flash" and memory.instruction_cache_bytes < LOOP_CACHE_BYTES else 0.0
            data = per_byte if memory.weights_in == "flash" else 0.0
            coefficients, weight = {}, {}
            for name, cost in self.classes.items():
                per_instruction = cost.scale * (self.cycles_per_instruction + code * cost.fetch_bytes_per_instruction)
                coefficients[name] = tuple(a * per_instruction for a in cost.instructions)
                weight[name] = cost.scale * data
            assumed = frozenset(name for name, cost in self.classes.items() if cost.assumed)
            cached = _BoardCycles(self.library, coefficients, weight, memory.data_cache_bytes, assumed)
            self._per_board[board] = cached
        return cached

    def op_cycles(self, graph: Graph, board: Board) -> list[tuple[str, float]]:
        """(class, cycles) of every op of ``graph`` on ``board``, in execution order."""
        op_cost = self._on(board).op_cost
        return [op_cost(op_signature(graph, op))[:2] for op in graph.ops]

    def graph_cycles(self, graph: Graph, board: Board) -> float:
        """Cycles of one inference of ``graph`` on ``board`` (sum over ops)."""
        return sum(cycles for _, cycles in self.op_cycles(graph, board))

    def estimate(self, graph: Graph, board: Board) -> LatencyEstimate:
        """Latency of one inference of ``graph`` on ``board`` with interval and assumed ops."""
        costs = self.signature_costs([op_signature(graph, op) for op in graph.ops], board)
        return self.latency_of(reduce(add, [cycles for _, cycles, _ in costs], 0.0),
                               [(op.kind, name, cycles) for op, (name, cycles, assumed) in zip(graph.ops, costs) if assumed],
                               board)

    def signature_costs(self, signatures: Iterable[tuple], board: Board) -> list[tuple[str, float, bool]]:
        """(class, cycles, assumed) on ``board`` of the ops of :func:`op_signature` ``signatures``
        (cached per board and signature)."""
        op_cost = self._on(board).op_cost
        return [op_cost(signature) for signature in signatures]

    def latency_of(self, total: float, assumed: Iterable[tuple[str, str, float]], board: Board) -> LatencyEstimate:
        """The estimate of an inference of ``total`` cycles on ``board`` (its ops' cycles added
        in execution order from 0.0); ``assumed``: (kind, class, cycles) of the ops whose class
        is assumed, in execution order."""
        assumed_cycles = 0.0
        counts: dict[tuple[str, str], int] = {}
        for kind, name, cycles in assumed:
            counts[kind, name] = counts.get((kind, name), 0) + 1
            assumed_cycles += cycles
        ms = total / (board.clock_mhz * 1000.0)
        return LatencyEstimate(
            latency_ms=ms,
            low_ms=ms * self.interval.low_factor,
            high_ms=ms * self.interval.high_factor,
            assumed_ops=tuple(f"{kind} ({name}) x{count}" for (kind, name), count in sorted(counts.items())),
            assumed_pct=100.0 * assumed_cycles / total if total else 0.0,
        )

    def with_scales(self, scales: dict[str, float], board: str, provenance: dict[str, Any]) -> Profile:
        """A calibrated copy: each class's cycles multiplied by ``scales[class]`` (default 1)."""
        classes = {name: ClassCost(cost.instructions, cost.fetch_bytes_per_instruction, cost.scale * scales.get(name, 1.0),
                                   cost.assumed) for name, cost in self.classes.items()}
        return Profile(self.core, self.runtime, self.library, self.cycles_per_instruction, classes, self.interval,
                       board, provenance)

    def to_dict(self) -> dict[str, Any]:
        terms = CLASS_TERMS[self.library]
        return {
            "schema": SCHEMA,
            "core": self.core,
            "runtime": self.runtime,
            "library": self.library,
            "board": self.board or None,
            "units": ("instructions: Cortex-M4 instructions per unit of each term; cycles_per_instruction: core "
                      "cycles per instruction at zero wait states; fetch_bytes_per_instruction: code bytes read "
                      "from flash past a small instruction cache per instruction"),
            "cycles_per_instruction": self.cycles_per_instruction,
            "classes": {
                name: {
                    "instructions": dict(zip(terms[name], cost.instructions)),
                    "fetch_bytes_per_instruction": cost.fetch_bytes_per_instruction,
                    "scale": cost.scale,
                    "assumed": cost.assumed or None,
                }
                for name, cost in self.classes.items()
            },
            "interval": {"r_min": self.interval.r_min, "r_max": self.interval.r_max, "basis": self.interval.basis},
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Profile:
        """Validate a profile read from ``source`` (a file name, for messages)."""
        if not isinstance(data, dict):
            raise ProfileError(f"profile {source}: expected a JSON object, got {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise ProfileError(f"profile {source}: 'schema' must be {SCHEMA!r}, got {data.get('schema')!r} "
                               "(refit old profiles with `mcunas estimate calibrate`)")
        for key in ("core", "runtime", "library", "cycles_per_instruction", "classes", "interval"):
            if key not in data:
                raise ProfileError(f"profile {source}: missing key '{key}'")
        if data["runtime"] not in RUNTIMES:
            raise ProfileError(f"profile {source}: runtime '{data['runtime']}' is not one of {', '.join(RUNTIMES)}")
        library = data["library"]
        if library not in LIBRARIES:
            raise ProfileError(f"profile {source}: library '{library}' is not one of {', '.join(LIBRARIES)}")
        cpi = _number(data["cycles_per_instruction"], f"profile {source}: 'cycles_per_instruction'")
        table = data["classes"]
        if not isinstance(table, dict):
            raise ProfileError(f"profile {source}: 'classes' must be an object of kernel classes")
        known = CLASS_TERMS[library]
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ProfileError(f"profile {source}: unknown classes {unknown} for library {library}")
        classes = {name: _class_cost(table.get(name), terms, f"profile {source}: 'classes.{name}") for name, terms in known.items()}
        interval = data["interval"]
        if not isinstance(interval, dict):
            raise ProfileError(f"profile {source}: 'interval' must be an object with r_min, r_max, basis")
        r_min = _number(interval.get("r_min"), f"profile {source}: 'interval.r_min'", minimum=-0.99, maximum=0.0)
        r_max = _number(interval.get("r_max"), f"profile {source}: 'interval.r_max'")
        return cls(str(data["core"]), data["runtime"], library, cpi, classes,
                   Interval(r_min, r_max, str(interval.get("basis", ""))), str(data.get("board") or ""),
                   dict(data.get("provenance", {})))


def _number(value: Any, where: str, minimum: float = 0.0, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f"in [{minimum:g}, {maximum:g}]" if maximum is not None else f">= {minimum:g}"
        raise ProfileError(f"{where} must be a number {bound}, got {value!r}")
    return float(value)


def _class_cost(entry: Any, terms: tuple[str, ...], where: str) -> ClassCost:
    if not isinstance(entry, dict) or not isinstance(entry.get("instructions"), dict):
        raise ProfileError(f"{where}' missing or without an 'instructions' object")
    given = entry["instructions"]
    extra = sorted(set(given) - set(terms))
    if extra:
        raise ProfileError(f"{where}.instructions' has unknown terms {extra}; terms: {', '.join(terms)}")
    instructions = tuple(_number(given.get(term, 0.0), f"{where}.instructions.{term}'") for term in terms)
    fetch = _number(entry.get("fetch_bytes_per_instruction", 0.0), f"{where}.fetch_bytes_per_instruction'")
    scale = _number(entry.get("scale", 1.0), f"{where}.scale'")
    return ClassCost(instructions, fetch, scale, str(entry.get("assumed") or ""))


def load_profile(path: str | Path) -> Profile:
    """Read a profile JSON file (as written by :func:`mcunas.estimators.calibrate.save_profile`)."""
    return Profile.from_dict(read_user_json(path, ProfileError, "latency profile"), str(path))


@lru_cache(maxsize=None)
def default_profile(core: str, runtime: str) -> Profile:
    """The packaged profile of a core family and runtime; BoardError if there is none."""
    check_runtime(runtime)
    name = f"{core}-{runtime}"
    resource = profile_file(name)
    if not resource.is_file():
        raise BoardError(
            f"no latency profile for core '{core}' with runtime '{runtime}'; packaged: {', '.join(profile_names())}"
        )
    return Profile.from_dict(json.loads(resource.read_text(encoding="utf-8")), f"profiles/{name}.json")


def unavailable_reason(board: Board, runtime: str) -> str | None:
    """Why ``board`` has no packaged latency model for ``runtime``, or None when it has one."""
    check_runtime(runtime)
    if not board.latency_supported:
        return f"latency is not supported on board '{board.name}' ({board.latency_note})"
    if f"{board.core}-{runtime}" not in profile_names():
        runtimes = [name[len(board.core) + 1:] for name in profile_names() if name.startswith(f"{board.core}-tflm-")]
        return (f"no latency profile for core '{board.core}' with runtime '{runtime}' "
                f"(board '{board.name}'; runtimes with a profile: {', '.join(runtimes) or 'none'})")
    return None


def resolve_profile(board: Board, runtime: str, profile: Profile | str | Path | None) -> Profile:
    """The profile to use for ``board``: the given one (object or file) or the packaged default.

    Raises BoardError when the board has no latency model for ``runtime`` and no profile is
    given, or when a given profile was made for another core, runtime or (calibrated) board.
    """
    check_runtime(runtime)
    if profile is None:
        reason = unavailable_reason(board, runtime)
        if reason is not None:
            raise BoardError(reason)
        return default_profile(board.core, runtime)
    chosen = profile if isinstance(profile, Profile) else load_profile(profile)
    if chosen.core != board.core or chosen.runtime != runtime:
        raise BoardError(
            f"profile for {chosen.core}/{chosen.runtime} does not match board '{board.name}' "
            f"({board.core}) with runtime {runtime}"
        )
    if chosen.board and chosen.board != board.name:
        raise BoardError(f"profile was calibrated on board '{chosen.board}', not '{board.name}'")
    return chosen


def estimate_latency(
    graph: Graph, board: Board, runtime: str = DEFAULT_RUNTIME, profile: Profile | str | Path | None = None
) -> LatencyEstimate:
    """Latency of one inference of ``graph`` on ``board`` with interval and assumed ops.

    Raises BoardError for a board without a latency model for ``runtime`` (and no profile).
    """
    return resolve_profile(board, runtime, profile).estimate(graph, board)


def latency_ms(
    graph: Graph, board: Board, runtime: str = DEFAULT_RUNTIME, profile: Profile | str | Path | None = None
) -> float:
    """Predicted latency of one inference of ``graph`` on ``board``, in milliseconds (point estimate)."""
    return estimate_latency(graph, board, runtime, profile).latency_ms
