"""Budgets: the limits a model must meet on a board, and the one check of a cost against them.

A board sets two limits: its SRAM for ``Cost.sram_bytes`` (the 32-bit tensor arena plus the
board's SRAM reserve) and the flash left after its flash reserve for ``Cost.flash_bytes``
(model + TFLM runtime code); an experiment may add a latency ceiling for ``Cost.latency_ms``
and byte budgets of its own: the two μNAS states (Liberis et al., 2021), an activation budget
for ``Cost.activation_bytes`` (the planned activations and scratch buffers of the arena,
without TFLM's persistent tail: μNAS's "peak memory usage") and a parameter budget for
``Cost.param_bytes`` (int8 weights and int32 biases: μNAS's "model size"); and the same
budgets as TFLM allocates them, on ``Cost.arena_bytes`` (the whole 32-bit arena) and
``Cost.model_bytes`` (the ``.tflite`` file a board stores).
:func:`limits` lists them as :class:`Limit` values (plain data, stored in a run directory so
the report needs no board file); :func:`broken_limits` answers "which limits does this cost
break" for ``estimate()``, the search trials, export and the report; :func:`overruns` gives the
same comparison as relative numbers for Optuna's constraint-aware samplers.

A model fits a board when ``arena + sram_reserve_bytes <= sram_bytes`` and
``model + runtime code <= flash_bytes - flash_reserve_bytes`` (and within the latency ceiling);
with an audio front end, its RAM and flash (``Cost.frontend_ram_bytes``/``frontend_flash_bytes``)
are part of both sides' model figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mcunas.estimators.board import Board

if TYPE_CHECKING:
    from mcunas.estimators.cost import Cost

# What a latency ceiling is checked against: the point estimate or the interval's upper bound.
LATENCY_BOUNDS: dict[str, str] = {"point": "latency_ms", "upper": "latency_ms_high"}


@dataclass(frozen=True)
class Limit:
    """One limit on one Cost field.

    Attributes:
        key: the constraint's name: ``sram``, ``flash``, ``latency``, ``activations``,
            ``params``, ``arena`` or ``model`` (Optuna constraint key).
        metric: the Cost field it limits: ``sram_bytes``, ``flash_bytes``, ``latency_ms``
            (or ``latency_ms_high``), ``activation_bytes``, ``param_bytes``, ``arena_bytes``,
            ``model_bytes``.
        value: the largest allowed value of ``metric`` (bytes or milliseconds), > 0.
        board: the board the limit belongs to.
        reserve: the part of the board's memory that is not available to the model (bytes;
            0 for latency), for messages.
    """

    key: str
    metric: str
    value: float
    board: str
    reserve: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limit:
        return cls(str(data["key"]), str(data["metric"]), float(data["value"]), str(data["board"]),
                   int(data.get("reserve", 0)))


def limits(
    board: Board,
    max_latency_ms: float | None = None,
    latency_bound: str = "point",
    max_activation_bytes: int | None = None,
    max_param_bytes: int | None = None,
    max_arena_bytes: int | None = None,
    max_model_bytes: int | None = None,
) -> tuple[Limit, ...]:
    """The limits on a model deployed to ``board``: SRAM, flash, and those given: the latency
    ceiling (ms, on the Cost field of ``latency_bound``, a key of :data:`LATENCY_BOUNDS`) and
    the byte budgets on ``Cost.activation_bytes``, ``param_bytes``, ``arena_bytes`` and
    ``model_bytes`` (see :data:`BYTE_BUDGETS`)."""
    found = [
        Limit("sram", "sram_bytes", float(board.sram_bytes), board.name, board.sram_reserve_bytes),
        Limit("flash", "flash_bytes", float(board.flash_budget_bytes), board.name, board.flash_reserve_bytes),
    ]
    if max_latency_ms is not None:
        found.append(Limit("latency", LATENCY_BOUNDS[latency_bound], float(max_latency_ms), board.name))
    budgets = (max_activation_bytes, max_param_bytes, max_arena_bytes, max_model_bytes)
    for (key, (metric, _)), value in zip(BYTE_BUDGETS.items(), budgets):
        if value is not None:
            found.append(Limit(key, metric, float(value), board.name))
    return tuple(found)


# Budgets in bytes of one Cost field (no board reserve), in the order of limits()'s arguments:
# Limit key -> (Cost field, what a message calls it).
BYTE_BUDGETS: dict[str, tuple[str, str]] = {
    "activations": ("activation_bytes", "activations (planned arena, no persistent tail)"),
    "params": ("param_bytes", "parameters (int8 weights, int32 biases)"),
    "arena": ("arena_bytes", "TFLM arena (32-bit)"),
    "model": ("model_bytes", "model file (.tflite)"),
}


def _kb(n_bytes: float) -> str:
    return f"{n_bytes / 1024:g} KB"


def _violation(limit: Limit, cost: Cost) -> str | None:
    """The message for ``limit`` broken by ``cost`` (a Cost or an object with its fields), or None."""
    value = getattr(cost, limit.metric)
    if limit.key == "latency":
        if value is None:
            return (f"latency ceiling {limit.value:g} ms cannot be checked: no latency estimate on "
                    f"{limit.board}")
        what = "latency" if limit.metric == "latency_ms" else "latency upper bound"
        return f"{what} {value:,.1f} ms > limit {limit.value:g} ms" if value > limit.value else None
    if value <= limit.value:
        return None
    if limit.key in BYTE_BUDGETS:
        return f"{BYTE_BUDGETS[limit.key][1]} {value:,} B > budget {round(limit.value):,} B"
    if limit.key == "sram":
        budget = round(limit.value) - limit.reserve
        frontend = f" + front end {cost.frontend_ram_bytes:,} B" if cost.frontend_ram_bytes else ""
        return (f"SRAM arena {cost.arena_bytes:,} B{frontend} > budget {budget:,} B "
                f"({_kb(limit.value)} - {_kb(limit.reserve)} reserve)")
    runtime_bytes = cost.flash_bytes - cost.model_bytes - cost.frontend_flash_bytes
    frontend = f" + front end {cost.frontend_flash_bytes:,} B" if cost.frontend_flash_bytes else ""
    return (f"flash {cost.flash_bytes:,} B (model {cost.model_bytes:,} B + runtime {runtime_bytes:,} B{frontend}) > "
            f"budget {round(limit.value):,} B ({_kb(limit.value + limit.reserve)} - {_kb(limit.reserve)} reserve)")


def broken_limits(cost: Cost, board_limits: Sequence[Limit]) -> list[str]:
    """One human-readable line per limit that ``cost`` breaks, in the order of ``board_limits``.

    A latency ceiling on a board without a latency estimate (``latency_ms`` None) counts as broken:
    it cannot be checked.
    """
    return [message for limit in board_limits if (message := _violation(limit, cost)) is not None]


def overruns(cost: Cost, board_limits: Sequence[Limit]) -> dict[str, float]:
    """Relative overrun ``value / limit - 1`` per limit key (> 0: broken), for Optuna constraints.

    A latency ceiling without a latency estimate counts as broken by 1.0 (100 %).
    """
    result = {}
    for limit in board_limits:
        value = getattr(cost, limit.metric)
        result[limit.key] = 1.0 if value is None else float(value) / limit.value - 1.0
    return result
