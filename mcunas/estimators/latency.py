"""Latency model: cycles per op from the op graph, per core family and kernel library.

Structure (physically motivated, coefficients fitted): the cycles an op takes on one core are

    cycles = per_op + per_mac * MACs + per_tap * taps + per_window * windows
             + per_input_element * input elements + per_output_element * output elements

for convolutions ``taps = output elements * KH * KW`` counts the inner channel loops of a
direct loop nest (TFLM reference kernels) and ``windows = output pixels * KH * KW`` the
input-row copies of an im2col kernel (CMSIS-NN); both carry the cost of loops that are short
when the input has few channels. MAC ops pay per MAC and per output element (requantization),
pooling and element-wise ops per element. Which terms each op class uses when fitting is
decided in :mod:`mcunas.estimators.calibrate`; here every class has all terms. A
:class:`Profile` holds the coefficients (cycles per unit) of every class for one core family
and one runtime; the packaged profiles are ``profiles/<core>-<runtime>.json``, fitted by
``benchmarks/latency_fit.py`` (see each file's ``provenance`` for data, assumptions and
residuals). Latency in milliseconds is ``cycles / (clock_mhz * 1000)``: one inference, batch 1,
no cache or wait-state model beyond what the fitted cycles-per-instruction absorbs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.errors import BoardError, ProfileError
from mcunas.estimators.packaged import profile_file, profile_names
from mcunas.estimators.runtime import DEFAULT_RUNTIME, RUNTIMES, check_runtime
from mcunas.graph.ir import Graph, Op

if TYPE_CHECKING:
    from mcunas.estimators.board import Board

# Cost terms, in the order of a class's coefficient tuple.
TERMS: tuple[str, ...] = (
    "per_op",
    "per_mac",
    "per_tap",
    "per_window",
    "per_input_element",
    "per_output_element",
)

# Op kind -> class. Kinds not listed use the class "other".
OP_CLASSES: dict[str, str] = {
    "CONV_2D": "conv",  # refined to conv_1x1 for 1x1 kernels, see op_class()
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "fully_connected",
    "ADD": "add",
    "AVERAGE_POOL_2D": "pool",
    "MAX_POOL_2D": "pool",
    "MEAN": "mean",
    "PAD": "pad",
    "RESHAPE": "reshape",
    "SOFTMAX": "softmax",
}

# Latency classes: CONV_2D splits into 1x1 (pointwise, a plain matrix product) and KxK.
CLASSES: tuple[str, ...] = (
    "conv_1x1",
    "conv",
    "depthwise",
    "fully_connected",
    "add",
    "pool",
    "mean",
    "pad",
    "reshape",
    "softmax",
    "other",
)


def op_class(op: Op) -> str:
    """The latency class of an op (one of :data:`CLASSES`)."""
    name = OP_CLASSES.get(op.kind, "other")
    return "conv_1x1" if name == "conv" and op.kernel == (1, 1) else name


def op_terms(graph: Graph, op: Op) -> tuple[int, int, int, int, int, int]:
    """The units of each term of :data:`TERMS` for one op: (1, MACs, taps, windows, inputs, outputs).

    Input elements are those of the op's first (activation) input, output elements those of
    its first output. For ops with MACs and a kernel, taps are output elements times the kernel
    area and windows output pixels (elements / channels) times the kernel area; else 0.
    """
    tensors = graph.tensors
    first = op.inputs[0] if op.inputs else -1
    inputs = prod(tensors[first].shape) if first >= 0 else 0
    if not op.outputs:
        return (1, op.macs, 0, 0, inputs, 0)
    shape = tensors[op.outputs[0]].shape
    outputs = prod(shape)
    kernel = op.kernel
    if kernel is None or not op.macs:
        return (1, op.macs, 0, 0, inputs, outputs)
    area = kernel[0] * kernel[1]
    pixels = outputs // shape[-1] if shape and shape[-1] else outputs
    return (1, op.macs, outputs * area, pixels * area, inputs, outputs)


@dataclass(frozen=True)
class Profile:
    """Cycle coefficients of one core family with one runtime.

    Attributes:
        core: core family, e.g. ``cortex-m4``.
        runtime: one of :data:`RUNTIMES`.
        cycles: class -> coefficients in :data:`TERMS` order, in CPU cycles per unit.
        provenance: free-form record of how the coefficients were obtained (data, date,
            assumptions, residuals); carried along, never interpreted.
    """

    core: str
    runtime: str
    cycles: dict[str, tuple[float, ...]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def op_cycles(self, graph: Graph, op: Op) -> float:
        """Cycles of one op: the dot product of its class's coefficients and its terms."""
        per_op, per_mac, per_tap, per_window, per_input, per_output = self.cycles[op_class(op)]
        _, macs, taps, windows, inputs, outputs = op_terms(graph, op)
        return per_op + per_mac * macs + per_tap * taps + per_window * windows + per_input * inputs + per_output * outputs

    def graph_cycles(self, graph: Graph) -> float:
        """Cycles of one inference (sum over ops; no per-invoke overhead beyond the ops)."""
        op_cycles = self.op_cycles
        return sum([op_cycles(graph, op) for op in graph.ops])

    def scaled(self, factor: float, provenance: dict[str, Any]) -> Profile:
        """A copy with every coefficient multiplied by ``factor`` and a new provenance."""
        cycles = {name: tuple(c * factor for c in values) for name, values in self.cycles.items()}
        return Profile(self.core, self.runtime, cycles, provenance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "runtime": self.runtime,
            "units": "CPU cycles per unit of each term",
            "terms": list(TERMS),
            "cycles": {name: dict(zip(TERMS, values)) for name, values in self.cycles.items()},
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Profile:
        """Validate a profile read from ``source`` (a file name, for messages)."""
        if not isinstance(data, dict):
            raise ProfileError(f"profile {source}: expected a JSON object, got {type(data).__name__}")
        for key in ("core", "runtime", "cycles"):
            if key not in data:
                raise ProfileError(f"profile {source}: missing key '{key}'")
        if data["runtime"] not in RUNTIMES:
            raise ProfileError(f"profile {source}: runtime '{data['runtime']}' is not one of {', '.join(RUNTIMES)}")
        table = data["cycles"]
        if not isinstance(table, dict):
            raise ProfileError(f"profile {source}: 'cycles' must be an object of op classes")
        cycles: dict[str, tuple[float, ...]] = {}
        for name in CLASSES:
            entry = table.get(name)
            if not isinstance(entry, dict):
                raise ProfileError(f"profile {source}: missing op class 'cycles.{name}'")
            values = []
            for term in TERMS:
                value = entry.get(term, 0.0)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ProfileError(f"profile {source}: 'cycles.{name}.{term}' must be a number >= 0, got {value!r}")
                values.append(float(value))
            cycles[name] = tuple(values)
        unknown = sorted(set(table) - set(CLASSES))
        if unknown:
            raise ProfileError(f"profile {source}: unknown op classes {unknown}; known: {', '.join(CLASSES)}")
        return cls(str(data["core"]), data["runtime"], cycles, dict(data.get("provenance", {})))


def load_profile(path: str | Path) -> Profile:
    """Read a profile JSON file (as written by :func:`mcunas.estimators.calibrate.save_profile`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"profile {path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ProfileError(f"profile {path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProfileError(f"profile {path}: invalid JSON at line {error.lineno}: {error.msg}") from None
    return Profile.from_dict(data, str(path))


@lru_cache(maxsize=None)
def default_profile(core: str, runtime: str) -> Profile:
    """The packaged profile of a core family and runtime; BoardError if there is none."""
    check_runtime(runtime)
    name = f"{core}-{runtime}"
    resource = profile_file(name)
    if not resource.is_file():
        raise BoardError(
            f"no latency profile for core '{core}' with runtime '{runtime}'; "
            f"packaged: {', '.join(profile_names())}"
        )
    return Profile.from_dict(json.loads(resource.read_text(encoding="utf-8")), f"profiles/{name}.json")


def resolve_profile(board: Board, runtime: str, profile: Profile | str | Path | None) -> Profile:
    """The profile to use for ``board``: the given one (object or file) or the packaged default.

    Raises BoardError when the board's latency is unsupported and no profile is given, or when a
    given profile was made for another core or runtime.
    """
    check_runtime(runtime)
    if profile is None:
        if not board.latency_supported:
            raise BoardError(f"board '{board.name}': latency is not supported ({board.latency_note})")
        return default_profile(board.core, runtime)
    chosen = profile if isinstance(profile, Profile) else load_profile(profile)
    if chosen.core != board.core or chosen.runtime != runtime:
        raise BoardError(
            f"profile for {chosen.core}/{chosen.runtime} does not match board '{board.name}' "
            f"({board.core}) with runtime {runtime}"
        )
    return chosen


def latency_ms(
    graph: Graph, board: Board, runtime: str = DEFAULT_RUNTIME, profile: Profile | str | Path | None = None
) -> float:
    """Predicted latency of one inference of ``graph`` on ``board``, in milliseconds.

    Raises BoardError for a board whose latency is not supported (no profile for its core).
    """
    chosen = resolve_profile(board, runtime, profile)
    return chosen.graph_cycles(graph) / (board.clock_mhz * 1000.0)
