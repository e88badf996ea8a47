"""The space-optimization section of the report: per board, the MACs CDF of every cell and a table.

Reads a space-optimization folder (:mod:`mcunas.rundir.spacedir`, written by
``mcunas space optimize``); nothing is recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from mcunas.report import figures
from mcunas.report.html import Column, FigureRef, count, figure_html, integer, percent_of_one, slug, table_html, text
from mcunas.rundir.spacedir import CellStats, SpaceResult, read_space_result

SPACE_TABLE = (
    Column("resolution", "resolution (px)", text),
    Column("width", "width", text),
    Column("samples", "samples", integer),
    Column("feasible", "feasible", integer),
    Column("feasible_fraction", "feasible (%)", percent_of_one),
    Column("macs_mean", "mean MACs (feasible)", count),
    Column("macs_median", "median MACs", count),
    Column("macs_p90", "90th pct MACs", count),
    Column("macs_max", "max MACs", count),
    Column("chosen", "chosen", text),
)


@dataclass(frozen=True)
class SpaceSection:
    """One space optimization on the page: its folder, result, and one CDF figure per board."""

    path: Path
    result: SpaceResult
    figures: dict[str, tuple[str, figures.RenderedFigure]]  # board -> (file stem, figure)


def load_space_section(path: Path) -> SpaceSection:
    """Read the folder and render its figures (``space_cdf_<board>``)."""
    result = read_space_result(path)
    rendered = {}
    for board in result.boards:
        chosen = result.chosen.get(board)
        curves = [(f"{cell.label} ({_percent(cell.feasible_fraction)} fit)", cell.macs_quantiles, chosen is cell)
                  for cell in result.board_cells(board)]
        rendered[board] = (f"space_cdf_{slug(board)}", figures.space_cdf_figure(board, curves))
    return SpaceSection(Path(path), result, rendered)


def section_html(section: SpaceSection, index: int) -> str:
    """The HTML of one space optimization (element ids ``space-<i>``, ``fig-space-<i>-<board>``,
    ``table-space-<i>-<board>``)."""
    result = section.result
    grid = (f"{len(result.resolutions)} resolutions ({', '.join(map(str, result.resolutions))} px) x "
            if result.resolutions else "")
    parts = [
        f'<section id="space-{index}"><h2>Search-space optimization: {escape(result.experiment)}</h2>',
        f'<p class="sub">{escape(str(section.path))}: space <b>{escape(result.space)}</b>, {grid}'
        f"{len(result.widths)} width multipliers ({', '.join(f'{w:g}' for w in result.widths)}; channels rounded to "
        f"multiples of {result.divisor}), {result.samples:,} architectures per cell (seed {result.seed}), "
        f"{result.estimates:,} estimates in {result.seconds:,.1f} s. Chosen cell: {escape(result.rule)}.</p>",
    ]
    for board in result.boards:
        chosen = result.chosen.get(board)
        if chosen is None:
            verdict = "no cell has a model that fits"
        else:
            verdict = (f"chosen <b>{escape(chosen.label)}</b>: {_percent(chosen.feasible_fraction)} feasible, mean "
                       f"{count(chosen.macs_mean)} MACs; narrowed config <code>{escape(result.narrowed[board])}</code>")
            edges = result.grid_edges(board)
            if edges:
                verdict += (f' <span class="note">(the grid\'s {escape(" and ".join(edges))}: a wider grid may hold a '
                            "better cell)</span>")
        stem, rendered = section.figures[board]
        caption = f"{board}: MACs of the feasible models, cumulative, per cell"
        rows = [_row(cell, chosen) for cell in result.board_cells(board)]
        parts += [
            f"<h3>{escape(board)}</h3><p>{verdict}</p>",
            '<div class="grid">', figure_html(FigureRef(f"fig-space-{index}-{slug(board)}", caption, rendered.svg)),
            "</div>", table_html(f"table-space-{index}-{slug(board)}", SPACE_TABLE, rows),
        ]
    parts.append("</section>")
    return "\n".join(parts)


def _percent(fraction: float) -> str:
    """``14%``; one decimal under 10 % (``0.3%``), so a cell with a few feasible models is not 0 %."""
    return f"{100 * fraction:.0f}%" if fraction >= 0.1 else f"{100 * fraction:.1f}%"


def _row(cell: CellStats, chosen: CellStats | None) -> dict[str, object]:
    return {**cell.row(cell is chosen), "resolution": "input" if cell.resolution is None else cell.resolution,
            "width": f"{cell.width:g}"}
