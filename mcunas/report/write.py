"""``write_report``: read run directories, write the HTML page, CSV tables and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mcunas.errors import RunDirError
from mcunas.io import atomic_write_bytes, atomic_write_text, staged_files
from mcunas.report import figures, html, space, tables
from mcunas.report.load import RunData, load_run

# The cost metrics charted against accuracy, one chart per board and metric.
CHART_METRICS: tuple[str, ...] = ("latency_ms", "sram_bytes", "flash_bytes")


def write_report(run_dirs: Sequence[Path], out_path: Path, space_dirs: Sequence[Path] = (), *,
                 storage_urls: Mapping[Path, str] | None = None) -> Path:
    """Write the report of ``run_dirs`` and ``space_dirs`` to ``out_path`` (HTML) and return it.

    Beside ``out_path`` go ``figures/``: for search runs ``pareto_<board>_<metric>.png|svg`` and
    ``progress.png|svg``, with ``pareto.csv`` and ``trials.csv``; for each space optimization
    (a folder of ``mcunas space optimize``, :mod:`mcunas.rundir.spacedir`) its section and
    ``space_cdf_<board>.png|svg`` (``_<i>`` appended after the first folder). The files are
    written into a staging folder and moved into place together: a report that cannot be
    written whole (a full disk: :class:`~mcunas.errors.OutOfSpaceError`) leaves none of its
    files behind. Runs are told apart by their directory names (with the parent folder
    prepended where two names are equal). ``storage_urls`` gives the usable storage URL of a run
    whose ``run.json`` records it with its password hidden. Raises :class:`RunDirError` for a
    missing or incomplete folder, or when none is given.
    """
    if not run_dirs and not space_dirs:
        raise RunDirError("no run directory or space optimization folder given")
    out_path = Path(out_path)
    urls = {Path(d).resolve(): url for d, url in (storage_urls or {}).items()}
    runs = [load_run(Path(d), label, storage_url=urls.get(Path(d).resolve()))
            for d, label in zip(run_dirs, _labels(run_dirs))]
    spaces = [space.load_space_section(Path(folder)) for folder in space_dirs]
    with staged_files(out_path.parent) as stage:
        _write_files(runs, spaces, stage, out_path.name)
    return out_path


def _write_files(runs: Sequence[RunData], spaces: Sequence[space.SpaceSection], out_dir: Path, page_name: str) -> None:
    """The page ``out_dir/page_name``, its tables and its figures."""
    figure_dir = out_dir / "figures"
    sections = []
    for index, section in enumerate(spaces):
        for stem, rendered in section.figures.values():
            _save(figure_dir, stem if index == 0 else f"{stem}_{index}", rendered)
        sections.append(space.section_html(section, index))
    if not runs:
        atomic_write_text(out_dir / page_name, html.render_sections_page(sections))
        return

    series_by_board = _series_by_board(runs)
    pareto_figures: dict[str, list[html.FigureRef]] = {}
    for board, series in series_by_board.items():
        refs = []
        for metric in CHART_METRICS:
            budget = _shared_budget(runs, board, metric)
            rendered = figures.pareto_figure(board, metric, series, budget)
            name = f"pareto_{html.slug(board)}_{metric}"
            _save(figure_dir, name, rendered)
            caption = f"{board}: {figures.ACCURACY_LABEL} against {figures.METRIC_AXES[metric][0]}"
            refs.append(html.FigureRef(f"fig-pareto-{html.slug(board)}-{metric}", caption, rendered.svg))
        pareto_figures[board] = refs

    progress_series = [s for series in series_by_board.values() for s in series]
    rendered = figures.progress_figure(progress_series, label_runs=len(runs) > 1)
    _save(figure_dir, "progress", rendered)
    progress = html.FigureRef("fig-progress", "Best validation accuracy among feasible trials so far", rendered.svg)

    pareto_rows = tables.pareto_rows(runs)
    validation_rows = tables.validation_rows(runs)
    trial_rows = tables.trial_rows(runs)
    atomic_write_text(out_dir / "pareto.csv", tables.to_csv(tables.PARETO_COLUMNS, pareto_rows))
    atomic_write_text(out_dir / "trials.csv", tables.to_csv(tables.TRIAL_COLUMNS, trial_rows))
    page = html.render_page(
        runs, tables.board_summaries(runs), pareto_figures, progress, pareto_rows, validation_rows, trial_rows,
        extra_sections=sections,
    )
    atomic_write_text(out_dir / page_name, page)


def _labels(run_dirs: Sequence[Path]) -> list[str]:
    """Run labels: directory names, with the parent prepended where names repeat."""
    names = [Path(d).resolve().name for d in run_dirs]
    return [
        name if names.count(name) == 1 else f"{Path(d).resolve().parent.name}/{name}"
        for d, name in zip(run_dirs, names)
    ]


def _series_by_board(runs: Sequence[RunData]) -> dict[str, list[figures.Series]]:
    """Board -> one series per (run, board), one color per series across the whole report."""
    keys = [(run, board) for run in runs for board in run.boards]
    colors = figures.series_colors(len(keys))
    by_board: dict[str, list[figures.Series]] = {}
    for (run, board), color in zip(keys, colors):
        by_board.setdefault(board, []).append(figures.Series(run.label, board, run.board_trials(board), color))
    return by_board


def _shared_budget(runs: Sequence[RunData], board: str, metric: str) -> float | None:
    """The board's limit on ``metric`` if every run that has this board agrees on it."""
    limits = {run.limit(board, metric) for run in runs if board in run.boards}
    return limits.pop() if len(limits) == 1 else None


def _save(figure_dir: Path, name: str, rendered: figures.RenderedFigure) -> None:
    atomic_write_bytes(figure_dir / f"{name}.png", rendered.png)
    atomic_write_bytes(figure_dir / f"{name}.svg", rendered.svg)
