"""Paper-ready matplotlib figures (Agg canvas, no pyplot state): Pareto charts per board and metric, search progress.

Figures are rendered to PNG and SVG bytes; the SVG output is deterministic (fixed
``svg.hashsalt``, no date in the metadata) so that a report of the same runs is byte-identical.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mcunas.rundir.records import TrialRecord
from mcunas.report.pareto import pareto_front

# Metric -> (axis label, divisor from the stored unit to the plotted unit).
METRIC_AXES: dict[str, tuple[str, float]] = {
    "latency_ms": ("Estimated latency (ms)", 1.0),
    "sram_bytes": ("Peak SRAM (KB)", 1024.0),
    "flash_bytes": ("Flash (KB)", 1024.0),
}
ACCURACY_LABEL = "Validation accuracy (%)"
PNG_DPI = 200
FIGURE_SIZE_IN = (5.0, 3.6)
CDF_FIGURE_SIZE_IN = (6.6, 3.8)  # room for a legend of many cells on the right
STYLE = {
    "svg.hashsalt": "mcunas-report",
    "svg.fonttype": "path",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
# Longest legend row, in characters, that fits the figure's width at the legend font size.
LEGEND_ROW_CHARS = 56
# Above this ratio of largest to smallest value the metric axis becomes logarithmic.
LOG_AXIS_RATIO = 30.0


@dataclass(frozen=True)
class Series:
    """The trials of one run on one board, drawn in one color.

    Attributes:
        run: the run's label (the legend entry on a board's Pareto chart when runs share it).
        board: the board name.
        trials: the run's trials on this board.
        color: a matplotlib color.
    """

    run: str
    board: str
    trials: Sequence[TrialRecord]
    color: str


@dataclass(frozen=True)
class RenderedFigure:
    png: bytes
    svg: bytes


def series_colors(count: int) -> list[str]:
    """``count`` distinguishable colors (tab10, then tab20)."""
    palette = matplotlib.colormaps["tab10" if count <= 10 else "tab20"].colors
    return [matplotlib.colors.to_hex(palette[i % len(palette)]) for i in range(count)]


def pareto_figure(board: str, metric: str, series: Sequence[Series], budget: float | None) -> RenderedFigure:
    """Accuracy against ``metric`` for every run on ``board``.

    The Pareto front of accuracy against this metric (feasible trials only) is drawn as a
    staircase of filled circles, dominated feasible trials as faded circles, infeasible trials as
    crosses (on the bottom edge when they were not trained), and ``budget`` (in the metric's
    stored unit) as a dashed vertical line.
    """
    label, scale = METRIC_AXES[metric]
    unit = label.rsplit("(", 1)[-1].rstrip(")")
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
        ax = fig.add_subplot()
        untrained: list[tuple[Series, list[float]]] = []
        all_x: list[float] = [budget / scale] if budget else []
        for s in series:
            done = [t for t in s.trials if t.state == "COMPLETE" and t.metric(metric) is not None]
            front = sorted(pareto_front(done, ["accuracy", metric]), key=lambda t: t.metric(metric))  # type: ignore[arg-type, return-value]
            front_ids = {t.number for t in front}
            trained = [t for t in done if t.accuracy_val is not None]
            dominated = [t for t in trained if t.feasible and t.number not in front_ids]
            infeasible = [t for t in trained if not t.feasible]
            all_x += [t.metric(metric) / scale for t in done]  # type: ignore[operator]
            _scatter(ax, dominated, metric, scale, s=18, color=s.color, alpha=0.25, linewidths=0)
            _scatter(ax, infeasible, metric, scale, marker="x", s=22, color=s.color, alpha=0.7, linewidths=1.0)
            xs = [t.metric(metric) / scale for t in front]  # type: ignore[operator]
            ys = [100 * t.accuracy_val for t in front]  # type: ignore[operator]
            ax.step(xs, ys, where="post", color=s.color, linewidth=1.4)
            ax.scatter(xs, ys, s=28, color=s.color, edgecolors="white", linewidths=0.6, zorder=3)
            untrained.append((s, [t.metric(metric) / scale for t in done if t.accuracy_val is None]))  # type: ignore[operator]
        # Candidates never trained (infeasible before training) sit on the bottom edge.
        bottom = ax.get_ylim()[0]
        for s, xs in untrained:
            ax.scatter(xs, [bottom] * len(xs), marker="x", s=22, color=s.color, alpha=0.7, linewidths=1.0, clip_on=False)
        ax.set_ylim(bottom=bottom)
        if budget is not None:
            ax.axvline(budget / scale, color="0.15", linestyle="--", linewidth=1.1)
        positive = [x for x in all_x if x > 0]
        if positive and max(positive) / min(positive) > LOG_AXIS_RATIO:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(ACCURACY_LABEL)
        ax.set_title(board)
        handles = [Line2D([], [], color="0.3", marker="o", markersize=5, linewidth=1.4, label="Pareto front"),
                   Line2D([], [], color="0.3", marker="o", markersize=4, alpha=0.3, linestyle="", label="dominated"),
                   Line2D([], [], color="0.3", marker="x", markersize=5, linestyle="", label="infeasible")]
        if budget is not None:
            handles.append(Line2D([], [], color="0.15", linestyle="--", label=f"budget {budget / scale:,.4g} {unit}"))
        if len(series) > 1:
            handles += [Line2D([], [], color=s.color, marker="o", linestyle="", label=s.run) for s in series]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), frameon=False)
        return _render(fig)


def progress_figure(series: Sequence[Series], label_runs: bool) -> RenderedFigure:
    """Best validation accuracy among feasible trials so far, against the trial number.

    One line per series (run and board); ``label_runs`` adds the run label to the board name.
    """
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
        ax = fig.add_subplot()
        for s in series:
            ordered = sorted((t for t in s.trials if t.state == "COMPLETE"), key=lambda t: t.number)
            feasible = [t for t in ordered if t.feasible and t.accuracy_val is not None]
            ax.scatter([t.number for t in feasible], [100 * t.accuracy_val for t in feasible],  # type: ignore[operator]
                       s=14, color=s.color, alpha=0.3, linewidths=0)
            numbers, best, current = [], [], None
            for t in ordered:
                if t.feasible and t.accuracy_val is not None:
                    current = max(current or 0.0, t.accuracy_val)
                if current is not None:
                    numbers.append(t.number)
                    best.append(100 * current)
            ax.step(numbers, best, where="post", color=s.color, linewidth=1.6,
                    label=f"{s.run} / {s.board}" if label_runs else s.board)
        ax.set_xlabel("Trial number")
        ax.set_ylabel(ACCURACY_LABEL)
        ax.set_title("Best feasible accuracy so far (line), feasible trials (dots)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        labels = ax.get_legend_handles_labels()[1]
        columns = 2 if sum(len(label) for label in labels[:2]) <= LEGEND_ROW_CHARS else 1
        fig.legend(loc="outside lower center", ncols=columns, frameon=False)
        return _render(fig)


def space_cdf_figure(board: str, curves: Sequence[tuple[str, Sequence[int], bool]]) -> RenderedFigure:
    """MACs CDFs of the feasible models of each cell of a space grid on ``board`` (MCUNet's figure).

    ``curves``: per cell its label, the percentiles 0..100 of its feasible models' MACs (empty:
    no feasible model, left out) and whether it is the chosen cell (drawn thick and black, the
    others in a colormap by grid order).
    """
    drawn = [curve for curve in curves if curve[1]]
    colors = matplotlib.colormaps["viridis"](
        [i / max(1, len(drawn) - 1) for i in range(len(drawn))]) if drawn else []
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=CDF_FIGURE_SIZE_IN, layout="constrained")
        ax = fig.add_subplot()
        for (label, quantiles, chosen), color in zip(drawn, colors):
            xs = [value / 1e6 for value in quantiles]
            ys = [i / (len(quantiles) - 1) for i in range(len(quantiles))]
            style = {"color": "black", "linewidth": 2.4, "zorder": 3} if chosen else {"color": color, "linewidth": 1.1}
            ax.step(xs, ys, where="post", label=f"{label} (chosen)" if chosen else label, **style)
        ax.set_xlabel("MACs of the feasible models (M)")
        ax.set_ylabel("Cumulative fraction")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{board}: one curve per cell (resolution x width)")
        if drawn:
            fig.legend(loc="outside right center", ncols=1 + len(drawn) // 16, frameon=False, fontsize=7)
        return _render(fig)


def _scatter(ax: Any, trials: Sequence[TrialRecord], metric: str, scale: float, **style: Any) -> None:
    ax.scatter([t.metric(metric) / scale for t in trials], [100 * t.accuracy_val for t in trials], **style)  # type: ignore[operator]


def _render(fig: Figure) -> RenderedFigure:
    FigureCanvasAgg(fig)
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return RenderedFigure(png.getvalue(), svg.getvalue())
