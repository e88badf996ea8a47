"""The estimator entry point: :func:`estimate` -> :class:`Cost` of one graph on one board.

A Cost is made in one place, :func:`cost_of`, from the :class:`CostFigures` of a network (its
MACs, parameters, arenas, planned activations, file size, op kinds and latency): :class:`GraphFigures` computes them
from a graph with the estimator modules (what :func:`estimate` does), and
:mod:`mcunas.estimators.fast` from cached parts of a search space's architecture.

The budgets a cost is checked against (SRAM, flash, an optional latency ceiling) are defined in
:mod:`mcunas.estimators.budget`; what no network changes (the board's limits with the budgets,
the runtime's kernel library, the packaged latency profile) is made once per board, runtime
and budgets and cached. Boards without a latency model for the runtime
(``latency_supported: false``, or no profile for the core and runtime) get ``latency_ms = None``;
that is not a violation unless a latency ceiling was asked for, which then cannot be checked.
The latency comes with its interval (``latency_ms_low``/``latency_ms_high``, from the fit's
leave-one-out errors, see :mod:`mcunas.estimators.latency`) and the ops whose cost is assumed
rather than fitted (``latency_assumed_ops``, ``latency_assumed_pct``).

A keyword-spotting model runs behind an audio front end (``features.c``, CMSIS-DSP): given its
:class:`mcunas.frontend.FrontEndConfig`, its flash (tables and code) and RAM (buffers, stack, the
PCM clip) from :func:`mcunas.frontend.frontend_memory_bytes` are part of ``flash_bytes`` and
``sram_bytes``, so the one budget check covers them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mcunas.estimators import flash, memory
from mcunas.estimators.board import Board, load_board
from mcunas.estimators.budget import Limit, broken_limits, limits
from mcunas.estimators.latency import LatencyEstimate, Profile, default_profile, resolve_profile, unavailable_reason
from mcunas.estimators.runtime import DEFAULT_RUNTIME, kernels_of
from mcunas.graph.ir import Graph

if TYPE_CHECKING:
    from mcunas.frontend.config import FrontEndConfig


@dataclass
class Cost:
    """Estimated cost of one model on one board with one runtime (all sizes in bytes).

    Attributes:
        board: board name.
        runtime: a name of :data:`mcunas.estimators.runtime.RUNTIMES`.
        macs: multiply-accumulates of one inference.
        params: weight and bias elements.
        arena_bytes: TFLM tensor arena on the 32-bit target.
        arena_bytes_host: TFLM tensor arena of the 64-bit host build (what ``mcunas.tflm`` measures).
        activation_bytes: the arena's planned part: activations and kernel scratch buffers as
            TFLM's greedy planner places them, without the persistent tail (μNAS's "peak
            memory usage"; see :mod:`mcunas.estimators.budget`).
        param_bytes: int8 weights and int32 biases (μNAS's "model size").
        sram_bytes: arena + the board's SRAM reserve + the front end's RAM.
        model_bytes: size of the ``.tflite`` flatbuffer.
        flash_bytes: model + TFLM runtime code for the op kinds and kernels used + the front end's flash.
        latency_ms: one inference at the board's clock; None where the board has no latency model.
        fits: True when no budget is violated.
        violations: one human-readable line per violated budget.
        latency_ms_low, latency_ms_high: the latency interval (ms); None with ``latency_ms``.
        latency_assumed_ops: ``"KIND (class) xN"`` for ops costed by assumption (no instruction data).
        latency_assumed_pct: share of ``latency_ms`` spent in those ops (percent).
        frontend_flash_bytes, frontend_ram_bytes: the audio front end's flash and RAM (0 without one).
    """

    board: str
    runtime: str
    macs: int
    params: int
    arena_bytes: int
    arena_bytes_host: int
    activation_bytes: int
    param_bytes: int
    sram_bytes: int
    model_bytes: int
    flash_bytes: int
    latency_ms: float | None
    fits: bool
    violations: list[str] = field(default_factory=list)
    latency_ms_low: float | None = None
    latency_ms_high: float | None = None
    latency_assumed_ops: list[str] = field(default_factory=list)
    latency_assumed_pct: float | None = None
    frontend_flash_bytes: int = 0
    frontend_ram_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with exactly the documented keys."""
        return asdict(self)


class CostFigures(Protocol):
    """What a :class:`Cost` is made of that depends on the network: read by :func:`cost_of`.

    :class:`GraphFigures` computes them from a graph with the estimator modules;
    :mod:`mcunas.estimators.fast` from cached parts of a search space's architecture.
    """

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference."""

    @property
    def params(self) -> int:
        """Weight and bias elements."""

    @property
    def param_bytes(self) -> int:
        """Bytes of the weights and biases as stored (int8, int32)."""

    def arena_bytes_pair(self, kernels: str) -> tuple[int, int]:
        """(32-bit arena with ``kernels``, 64-bit host arena with the reference kernels), bytes."""

    def activation_bytes(self, kernels: str) -> int:
        """The 32-bit arena's planned part with ``kernels`` (no persistent tail), bytes."""

    def model_bytes(self) -> int:
        """Size of the ``.tflite`` file (bytes)."""

    def op_kinds(self) -> Iterable[str]:
        """The distinct op kinds."""

    def latency(self, profile: Profile, board: Board) -> LatencyEstimate:
        """One inference on ``board`` with ``profile``."""


class GraphFigures:
    """The :class:`CostFigures` of a graph: what ``estimate(graph, ...)`` costs."""

    def __init__(self, graph: Graph):
        self.graph = graph

    @property
    def macs(self) -> int:
        return self.graph.macs

    @property
    def params(self) -> int:
        return self.graph.params

    @property
    def param_bytes(self) -> int:
        return self.graph.param_bytes

    def arena_bytes_pair(self, kernels: str) -> tuple[int, int]:
        return memory.arena_bytes_pair(self.graph, kernels)

    def activation_bytes(self, kernels: str) -> int:
        return memory.plan_bytes(self.graph, kernels, "cortex-m")

    def model_bytes(self) -> int:
        return flash.model_bytes(self.graph)

    def op_kinds(self) -> list[str]:
        return self.graph.op_kinds()

    def latency(self, profile: Profile, board: Board) -> LatencyEstimate:
        return profile.estimate(self.graph, board)


def estimate(graph: Graph, board: Board | str | Path, runtime: str = DEFAULT_RUNTIME, **options: Any) -> Cost:
    """Estimate arena, SRAM, flash and latency of ``graph`` on ``board`` and check the budgets.

    ``graph``: the model as deployed (from a space or :func:`mcunas.graph.tflite.read_tflite`);
    ``board``, ``runtime`` and the keyword ``options`` as for :func:`cost_of`.
    """
    return cost_of(GraphFigures(graph), board, runtime, **options)


def cost_of(
    figures: CostFigures,
    board: Board | str | Path,
    runtime: str = DEFAULT_RUNTIME,
    *,
    profile: Profile | str | Path | None = None,
    front_end: FrontEndConfig | None = None,
    **budgets: Any,
) -> Cost:
    """The :class:`Cost` of a network of ``figures`` on ``board``, budgets checked: the one place a
    Cost is made (:func:`estimate` for a graph, :func:`mcunas.estimators.fast.estimate_arch` for
    a space's architecture).

    Args:
        figures: what the Cost is made of (:class:`GraphFigures` of a graph, or the fast path's).
        board: a :class:`Board`, a catalog name or a board file path.
        runtime: a name of :data:`mcunas.estimators.runtime.RUNTIMES`.
        profile: latency profile (object or JSON file, e.g. from ``mcunas estimate calibrate``);
            default: the packaged profile of the board's core and runtime.
        front_end: the audio front end that computes the model's input on the device, if any:
            its flash and RAM count in ``flash_bytes`` and ``sram_bytes``.
        budgets: the optional limits beside the board's SRAM and flash, the keyword arguments
            of :func:`mcunas.estimators.budget.limits`: ``max_latency_ms`` (ms) checked on the
            point or ``upper`` bound (``latency_bound``), the byte budgets
            ``max_activation_bytes`` and ``max_param_bytes`` (μNAS's counts), ``max_arena_bytes``
            and ``max_model_bytes`` (what TFLM allocates, what the board stores).
    """
    board = load_board(board)
    setting = _setting(board, runtime, tuple(budgets.items()))
    kernels = setting.kernels
    arena, arena_host = figures.arena_bytes_pair(kernels)
    model = figures.model_bytes()
    runtime_code = flash.runtime_code_bytes(figures.op_kinds(), kernels, board.core)
    latency = None
    if profile is not None:
        latency = figures.latency(resolve_profile(board, runtime, profile), board)
    elif setting.profile is not None:
        latency = figures.latency(setting.profile, board)
    frontend_flash = frontend_ram = 0
    if front_end is not None:
        from mcunas.frontend.memory import frontend_memory_bytes

        frontend_flash, frontend_ram = frontend_memory_bytes(front_end)
    cost = Cost(
        board=board.name,
        runtime=runtime,
        macs=figures.macs,
        params=figures.params,
        arena_bytes=arena,
        arena_bytes_host=arena_host,
        activation_bytes=figures.activation_bytes(kernels),
        param_bytes=figures.param_bytes,
        sram_bytes=arena + board.sram_reserve_bytes + frontend_ram,
        model_bytes=model,
        flash_bytes=model + runtime_code + frontend_flash,
        latency_ms=None if latency is None else latency.latency_ms,
        fits=True,
        frontend_flash_bytes=frontend_flash,
        frontend_ram_bytes=frontend_ram,
    )
    if latency is not None:
        cost.latency_ms_low, cost.latency_ms_high = latency.low_ms, latency.high_ms
        cost.latency_assumed_ops, cost.latency_assumed_pct = list(latency.assumed_ops), latency.assumed_pct
    cost.violations = broken_limits(cost, setting.limits)
    cost.fits = not cost.violations
    return cost


@dataclass(frozen=True)
class _Setting:
    """What every Cost on one board with one runtime and budgets shares, whatever the network.

    Attributes:
        kernels: the runtime's kernel library.
        limits: :func:`mcunas.estimators.budget.limits` of the board and budgets.
        profile: the packaged latency profile of the board's core and runtime; None where the
            board has no latency model for the runtime.
    """

    kernels: str
    limits: tuple[Limit, ...]
    profile: Profile | None


@lru_cache(maxsize=256)
def _setting(board: Board, runtime: str, budgets: tuple[tuple[str, Any], ...]) -> _Setting:
    """The :class:`_Setting` of ``board``, ``runtime`` and the ``budgets`` keyword arguments of
    :func:`limits` as (name, value) pairs (cached: a search or a space optimization costs
    thousands of networks on the same few)."""
    kernels = kernels_of(runtime)
    profile = default_profile(board.core, runtime) if unavailable_reason(board, runtime) is None else None
    return _Setting(kernels, limits(board, **dict(budgets)), profile)
