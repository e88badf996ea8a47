"""The estimator entry point: :func:`estimate` -> :class:`Cost` of one graph on one board.

The budgets a cost is checked against (SRAM, flash, an optional latency ceiling) are defined in
:mod:`mcunas.estimators.budget`. Boards without a latency model for the runtime
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

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.estimators.board import Board, load_board
from mcunas.estimators.budget import broken_limits, limits
from mcunas.estimators.latency import Profile, resolve_profile, unavailable_reason
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


def estimate(
    graph: Graph,
    board: Board | str | Path,
    runtime: str = DEFAULT_RUNTIME,
    profile: Profile | str | Path | None = None,
    max_latency_ms: float | None = None,
    latency_bound: str = "point",
    max_activation_bytes: int | None = None,
    max_param_bytes: int | None = None,
    max_arena_bytes: int | None = None,
    max_model_bytes: int | None = None,
    front_end: FrontEndConfig | None = None,
) -> Cost:
    """Estimate arena, SRAM, flash and latency of ``graph`` on ``board`` and check the budgets.

    Args:
        graph: the model as deployed (from a space or :func:`mcunas.graph.tflite.read_tflite`).
        board: a :class:`Board`, a catalog name or a board file path.
        runtime: a name of :data:`mcunas.estimators.runtime.RUNTIMES`.
        profile: latency profile (object or JSON file, e.g. from ``mcunas estimate calibrate``);
            default: the packaged profile of the board's core and runtime.
        max_latency_ms: optional latency ceiling (ms).
        latency_bound: what the ceiling is checked against: ``point`` (``latency_ms``) or
            ``upper`` (``latency_ms_high``), see :data:`mcunas.estimators.budget.LATENCY_BOUNDS`.
        max_activation_bytes, max_param_bytes, max_arena_bytes, max_model_bytes: optional byte
            budgets on ``activation_bytes`` and ``param_bytes`` (μNAS's counts), ``arena_bytes``
            and ``model_bytes`` (what TFLM allocates, what the board stores).
        front_end: the audio front end that computes the model's input on the device, if any:
            its flash and RAM count in ``flash_bytes`` and ``sram_bytes``.
    """
    from mcunas.estimators import flash, memory
    from mcunas.frontend.memory import frontend_memory_bytes

    kernels = kernels_of(runtime)
    board = load_board(board)
    arena, arena_host = memory.arena_bytes_pair(graph, kernels)
    model = flash.model_bytes(graph)
    runtime_code = flash.runtime_code_bytes(graph.op_kinds(), kernels, board.core)
    latency = None
    if profile is not None or unavailable_reason(board, runtime) is None:
        latency = resolve_profile(board, runtime, profile).estimate(graph, board)
    frontend_flash, frontend_ram = frontend_memory_bytes(front_end) if front_end is not None else (0, 0)
    cost = Cost(
        board=board.name,
        runtime=runtime,
        macs=graph.macs,
        params=graph.params,
        arena_bytes=arena,
        arena_bytes_host=arena_host,
        activation_bytes=memory.plan_bytes(graph, kernels, "cortex-m"),
        param_bytes=graph.param_bytes,
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
    board_limits = limits(board, max_latency_ms, latency_bound, max_activation_bytes, max_param_bytes,
                          max_arena_bytes, max_model_bytes)
    cost.violations = broken_limits(cost, board_limits)
    cost.fits = not cost.violations
    return cost
