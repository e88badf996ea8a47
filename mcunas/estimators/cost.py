"""The estimator entry point: :func:`estimate` -> :class:`Cost` of one graph on one board.

Budgets (see :mod:`mcunas.estimators.board`):

* SRAM: ``sram_bytes = arena_bytes + board.sram_reserve_bytes <= board.sram_bytes``, the arena
  being the 32-bit target arena of :func:`mcunas.estimators.memory.arena_bytes`;
* flash: ``flash_bytes = model_bytes + TFLM runtime code <= board.flash_bytes - board.flash_reserve_bytes``;
* latency: ``latency_ms <= max_latency_ms`` when a ceiling is given.

Boards without a latency model (``latency_supported: false``) get ``latency_ms = None``; that is
not a violation unless a latency ceiling was asked for, which then cannot be checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcunas.estimators.board import Board, load_board
from mcunas.estimators.latency import Profile, check_runtime, resolve_profile
from mcunas.graph.ir import Graph

# Runtime -> kernel library name used by the memory and flash estimators.
KERNELS: dict[str, str] = {"tflm-cmsis-nn": "cmsis-nn", "tflm-reference": "reference"}


@dataclass
class Cost:
    """Estimated cost of one model on one board with one runtime (all sizes in bytes).

    Attributes:
        board: board name.
        runtime: ``tflm-cmsis-nn`` or ``tflm-reference``.
        macs: multiply-accumulates of one inference.
        params: weight and bias elements.
        arena_bytes: TFLM tensor arena on the 32-bit target.
        arena_bytes_host: TFLM tensor arena of the 64-bit host build (what ``mcunas.tflm`` measures).
        sram_bytes: arena + the board's SRAM reserve.
        model_bytes: size of the ``.tflite`` flatbuffer.
        flash_bytes: model + TFLM runtime code for the op kinds and kernels used.
        latency_ms: one inference at the board's clock; None where the board has no latency model.
        fits: True when no budget is violated.
        violations: one human-readable line per violated budget.
    """

    board: str
    runtime: str
    macs: int
    params: int
    arena_bytes: int
    arena_bytes_host: int
    sram_bytes: int
    model_bytes: int
    flash_bytes: int
    latency_ms: float | None
    fits: bool
    violations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with exactly the documented keys."""
        return asdict(self)


def _kb(n_bytes: int) -> str:
    return f"{n_bytes / 1024:g} KB"


def estimate(
    graph: Graph,
    board: Board | str | Path,
    runtime: str = "tflm-cmsis-nn",
    profile: Profile | str | Path | None = None,
    max_latency_ms: float | None = None,
) -> Cost:
    """Estimate arena, SRAM, flash and latency of ``graph`` on ``board`` and check the budgets.

    Args:
        graph: the model as deployed (from a space or :func:`mcunas.graph.tflite.read_tflite`).
        board: a :class:`Board`, a catalog name or a board file path.
        runtime: ``tflm-cmsis-nn`` or ``tflm-reference``.
        profile: latency profile (object or JSON file, e.g. from ``mcunas estimate calibrate``);
            default: the packaged profile of the board's core and runtime.
        max_latency_ms: optional latency ceiling (ms).
    """
    from mcunas.estimators import flash, memory

    check_runtime(runtime)
    board = load_board(board)
    kernels = KERNELS[runtime]
    arena, arena_host = memory.arena_bytes_pair(graph, kernels)
    model = flash.model_bytes(graph)
    runtime_code = flash.runtime_code_bytes(graph.op_kinds(), kernels, board.core)
    latency = None
    if board.latency_supported or profile is not None:
        chosen = resolve_profile(board, runtime, profile)
        latency = chosen.graph_cycles(graph) / (board.clock_mhz * 1000.0)

    sram = arena + board.sram_reserve_bytes
    flash_total = model + runtime_code
    violations = []
    if sram > board.sram_bytes:
        violations.append(
            f"SRAM arena {arena:,} B > budget {board.arena_budget_bytes:,} B "
            f"({_kb(board.sram_bytes)} - {_kb(board.sram_reserve_bytes)} reserve)"
        )
    if flash_total > board.flash_budget_bytes:
        violations.append(
            f"flash {flash_total:,} B (model {model:,} B + runtime {runtime_code:,} B) > budget "
            f"{board.flash_budget_bytes:,} B ({_kb(board.flash_bytes)} - {_kb(board.flash_reserve_bytes)} reserve)"
        )
    if max_latency_ms is not None:
        if latency is None:
            violations.append(
                f"latency ceiling {max_latency_ms:g} ms cannot be checked: latency unsupported on "
                f"{board.name} ({board.latency_note})"
            )
        elif latency > max_latency_ms:
            violations.append(f"latency {latency:,.1f} ms > limit {max_latency_ms:g} ms")
    return Cost(
        board=board.name,
        runtime=runtime,
        macs=graph.macs,
        params=graph.params,
        arena_bytes=arena,
        arena_bytes_host=arena_host,
        sram_bytes=sram,
        model_bytes=model,
        flash_bytes=flash_total,
        latency_ms=latency,
        fits=not violations,
        violations=violations,
    )
