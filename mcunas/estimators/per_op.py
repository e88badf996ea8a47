"""Per-op view of an estimate: where the arena and the latency go, op by op.

``mcunas estimate MODEL --per-op`` prints it; every export folder holds it as ``per_op.txt``.
Rows are :class:`OpRow` (plain data); :func:`per_op_view` builds them, :func:`format_table`
and :func:`to_dict` render them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.estimators.latency import Profile, resolve_profile, unavailable_reason
from mcunas.estimators.memory import live_bytes_per_op
from mcunas.estimators.runtime import DEFAULT_RUNTIME, kernels_of
from mcunas.graph.ir import Graph

if TYPE_CHECKING:
    from mcunas.estimators.board import Board


@dataclass(frozen=True, slots=True)
class OpRow:
    """One op of the per-op view.

    Attributes:
        index: position in execution order (the .tflite operator index for imported models).
        kind: TFLite builtin operator name.
        output_shape: shape of the op's first output.
        macs: multiply-accumulates of the op.
        live_bytes: arena head bytes live while the op runs (its inputs, outputs, every other
            tensor still needed later, and its scratch buffers; 16-aligned sizes).
        latency_share: the op's share of the predicted cycles (0..1), None without a profile.
        latency_class: the latency model's class for the op (the kernel it runs), "" without a latency model.
        peak: True for the op with the most live bytes (the first of equals).
    """

    index: int
    kind: str
    output_shape: tuple[int, ...]
    macs: int
    live_bytes: int
    latency_share: float | None
    latency_class: str
    peak: bool


def per_op_view(
    graph: Graph,
    board: Board | None = None,
    runtime: str = DEFAULT_RUNTIME,
    profile: Profile | str | Path | None = None,
    target: str = "cortex-m",
) -> list[OpRow]:
    """The per-op rows of ``graph``: the arena of ``target`` with the runtime's kernels (see
    :func:`mcunas.estimators.memory.live_bytes_per_op`) and, on a board with a latency model for
    the runtime (or with ``profile``), each op's latency share and class."""
    live = live_bytes_per_op(graph, target, kernels_of(runtime))
    peak = max(range(len(live)), key=live.__getitem__) if live else -1
    costs = None
    if board is not None and (profile is not None or unavailable_reason(board, runtime) is None):
        costs = resolve_profile(board, runtime, profile).op_cycles(graph, board)
    total = sum(cycles for _, cycles in costs) if costs else 0.0
    tensors = graph.tensors
    return [
        OpRow(
            index=index,
            kind=op.kind,
            output_shape=tuple(tensors[op.outputs[0]].shape) if op.outputs else (),
            macs=op.macs,
            live_bytes=live[index],
            latency_share=(costs[index][1] / total if total else 0.0) if costs is not None else None,
            latency_class=costs[index][0] if costs is not None else "",
            peak=index == peak,
        )
        for index, op in enumerate(graph.ops)
    ]


def to_dict(rows: list[OpRow]) -> list[dict[str, Any]]:
    """JSON-ready rows (shapes as lists)."""
    return [{**asdict(row), "output_shape": list(row.output_shape)} for row in rows]


def format_table(rows: list[OpRow]) -> str:
    """A fixed-width text table, the peak-memory op marked with ``<- peak``."""
    header = ("#", "op", "output shape", "MACs", "live arena (B)", "latency", "")
    lines = []
    for row in rows:
        share = "-" if row.latency_share is None else f"{100 * row.latency_share:.1f}%"
        lines.append(
            (
                str(row.index),
                row.kind,
                "x".join(str(d) for d in row.output_shape),
                f"{row.macs:,}",
                f"{row.live_bytes:,}",
                share,
                "<- peak" if row.peak else "",
            )
        )
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    left = {1, 2, 6}

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([render(header), *(render(cells) for cells in lines)])


def per_op_text(graph: Graph, board: Board | None, runtime: str) -> str:
    """The per-op view as text for a file (an export folder's ``per_op.txt``): a heading naming
    the model, board and runtime, then :func:`format_table`. Without a board (or where its
    latency is unsupported) the latency column is empty."""
    rows = per_op_view(graph, board, runtime)
    where = f"board {board.name}" if board is not None else "a generic 32-bit target"
    return (
        f"{graph.name}: per op, 32-bit arena ({runtime}) on {where}; live arena = bytes of the tensors and "
        "scratch buffers alive while the op runs (16-byte aligned)\n\n" + format_table(rows) + "\n"
    )
