"""Search-space optimization, MCUNet's first step, for every board of an experiment.

Before searching, choose the input resolution and the width of the space so that the models
which fit the board have the most compute: among spaces whose feasible models have more MACs,
the search tends to find more accurate ones (Lin et al., "MCUNet", NeurIPS 2020, section 3.1;
the authors did not release that code). mcunas can do it for any board and any budget, because
its estimators need no training and no device.

:func:`optimize_space` takes a grid of cells, input resolution x width multiplier (defaults:
the config space's resolutions, :data:`DEFAULT_WIDTHS`). A cell is the config's space with
``resolutions: [r]`` and every channel choice scaled by the width
(:meth:`mcunas.spaces.Space.width_options`, rounded to multiples of ``divisor``). In each cell it
draws ``samples`` architectures uniformly (the same seed in every cell:
:func:`mcunas.spaces.draws.uniform_archs`), estimates each on every board with the experiment's
runtime and constraints (:func:`estimate_arch`), and keeps per (cell, board) the feasible
fraction and the MACs distribution of the feasible models. The chosen cell of a board follows
:data:`RULE`. The folder format (``space_optimize.json``, ``cells.csv``, ``narrowed/<board>.yaml``
experiment configs ready for ``mcunas search``) is :mod:`mcunas.rundir.spacedir`; the figure
and the HTML section come from :func:`mcunas.report.write_report` (``mcunas space optimize``
writes both).

Spaces without a searched resolution (dscnn: the input size comes from the front end) have a
width-only grid.
"""

from __future__ import annotations

import gc
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.config import Experiment, parse_experiment
from mcunas.errors import ConfigError, RunDirError
from mcunas.estimators import Board, Cost, load_board
from mcunas.estimators.cost import cost_of
from mcunas.estimators.fast import arch_figures
from mcunas.io import atomic_write_text
from mcunas.rundir.runinfo import RUN_INFO_FILE
from mcunas.rundir.spacedir import NARROWED_DIR, QUANTILES, CellStats, SpaceResult, write_space_result
from mcunas.spaces import Space, space_for_input
from mcunas.spaces.draws import uniform_archs

if TYPE_CHECKING:
    from mcunas.data.splits import DatasetSplits
    from mcunas.spaces import Arch

DEFAULT_SAMPLES = 1000
DEFAULT_WIDTHS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
# Channel counts of a scaled space are multiples of this: CMSIS-NN's int8 kernels work on
# channels in groups of 4 (MobileNet's 8 would merge the choices of the tiny spaces).
DEFAULT_DIVISOR = 4
DEFAULT_MIN_FEASIBLE_FRACTION = 0.05
RULE = (
    "highest mean MACs of the feasible models (MCUNet), among the cells where at least {min_pct} of the "
    "samples fit (all cells with a feasible model when none reaches that); ties: the larger feasible "
    "fraction, then the smaller resolution, then the smaller width"
)


def estimate_arch(space: Space, arch: Arch, boards: Sequence[Board], experiment: Experiment) -> list[Cost]:
    """One Cost per board for ``arch``: the experiment's runtime, latency ceiling, budgets and
    front end -- ``estimate(space.graph(arch), board, ...)``'s Cost, from the fast estimator's
    cached parts (:func:`mcunas.estimators.fast.arch_figures` once, then each board).
    """
    figures = arch_figures(space, arch)
    arguments = experiment.constraints.budget_arguments()
    return [cost_of(figures, board, experiment.runtime, **arguments, front_end=experiment.dataset.front_end)
            for board in boards]


def cell_options(experiment: Experiment, base: Space, resolution: int | None, width: float, divisor: int) -> dict[str, Any]:
    """The space options of one cell: the config's, scaled by ``width``, at ``resolution``."""
    options = {**experiment.space.options, **base.width_options(width, divisor)}
    if resolution is not None:
        options["resolutions"] = [resolution]
    return options


def choose_cell(cells: Sequence[CellStats], min_feasible_fraction: float) -> CellStats | None:
    """The cell :data:`RULE` picks among one board's cells; None when no cell has a feasible model."""
    feasible = [cell for cell in cells if cell.feasible]
    eligible = [cell for cell in feasible if cell.feasible_fraction >= min_feasible_fraction] or feasible
    if not eligible:
        return None
    return max(eligible, key=lambda c: (c.macs_mean, c.feasible_fraction, -(c.resolution or 0), -c.width))


def narrowed_experiment(experiment: Experiment, board: str, cell: CellStats) -> Experiment:
    """The experiment on ``board`` (its config entry) alone, with the cell's space (and, for a
    square space, the dataset prepared at the cell's resolution)."""
    data = experiment.to_dict()
    data["boards"] = [board]
    data["space"] = {"name": experiment.space.name, **cell.space_options}
    if cell.resolution is not None:
        data["dataset"]["resolution"] = cell.resolution
    return parse_experiment(data, source=f"narrowed config for {board} ({cell.label})")


def optimize_space(
    experiment: Experiment,
    out_dir: str | Path,
    *,
    samples: int = DEFAULT_SAMPLES,
    resolutions: Sequence[int] | None = None,
    widths: Sequence[float] | None = None,
    divisor: int = DEFAULT_DIVISOR,
    min_feasible_fraction: float = DEFAULT_MIN_FEASIBLE_FRACTION,
    seed: int | None = None,
    progress: bool | None = None,
) -> SpaceResult:
    """Optimize the resolution and width of ``experiment``'s space for each of its boards.

    Args:
        experiment: a validated experiment (its dataset is loaded once for the input channels and
            classes).
        out_dir: the folder to write (see :mod:`mcunas.rundir.spacedir`); a search run directory
            is refused.
        samples: architectures drawn per cell.
        resolutions: input sides of the grid (pixels); default: the config space's candidates
            (its ``resolutions`` option, else ``dataset.resolution``). Not allowed for spaces
            whose input size is not searched.
        widths: width multipliers of the grid; default :data:`DEFAULT_WIDTHS`.
        divisor: scaled channel counts are multiples of it.
        min_feasible_fraction: see :data:`RULE`.
        seed: of the draws (default: the experiment's seed).
        progress: show a progress bar (None: when stderr is a terminal).

    Returns:
        The result, also written to ``out_dir``.

    Raises:
        ConfigError: a bad grid value, or a cell whose space the options do not allow (the
            message names the cell).
        RunDirError: ``out_dir`` is a search run directory.
    """
    from tqdm import tqdm

    from mcunas.search.context import DataCache, make_space

    out_dir = Path(out_dir)
    if (out_dir / RUN_INFO_FILE).is_file():
        raise RunDirError(f"{out_dir}: a search run directory; give space optimize its own folder")
    if samples < 1:
        raise ConfigError(f"samples: expected a positive number of architectures per cell, got {samples}")
    if not 0.0 <= min_feasible_fraction <= 1.0:
        raise ConfigError(f"min feasible fraction: expected a number in [0, 1], got {min_feasible_fraction}")
    boards = [load_board(entry) for entry in experiment.boards]
    splits = DataCache(experiment).splits()
    base = make_space(experiment, splits)
    grid_resolutions = _grid_resolutions(base, resolutions)
    grid_widths = _grid_widths(widths)
    seed = experiment.seed if seed is None else seed
    cells_grid = [(r, w) for r in (grid_resolutions or [None]) for w in grid_widths]
    spaces = [_cell_space(experiment, base, r, w, divisor, splits) for r, w in cells_grid]

    start = time.perf_counter()
    macs: dict[tuple[int, str], list[int]] = {}
    with _heap_frozen(), tqdm(total=len(spaces) * samples, desc="space optimize", unit="arch", file=sys.stderr,
                              disable=None if progress is None else not progress) as bar:
        for index, (space, _options) in enumerate(spaces):
            for arch in uniform_archs(space, samples, seed):
                for board, cost in zip(boards, estimate_arch(space, arch, boards, experiment)):
                    if cost.fits:
                        macs.setdefault((index, board.name), []).append(cost.macs)
                bar.update(1)
    seconds = time.perf_counter() - start

    cells = [
        _stats(board.name, r, w, samples, macs.get((index, board.name), []), options)
        for board in boards
        for index, ((r, w), (_space, options)) in enumerate(zip(cells_grid, spaces))
    ]
    chosen = {}
    for board in boards:
        choice = choose_cell([c for c in cells if c.board == board.name], min_feasible_fraction)
        if choice is not None:
            chosen[board.name] = choice
    narrowed = {}
    for entry, board in zip(experiment.boards, boards):
        if board.name in chosen:
            relative = f"{NARROWED_DIR}/{_file_name(board.name)}.yaml"
            atomic_write_text(out_dir / relative, narrowed_experiment(experiment, entry, chosen[board.name]).to_yaml())
            narrowed[board.name] = relative
    result = SpaceResult(
        experiment=experiment.name, config=experiment.to_dict(), space=experiment.space.name, samples=samples,
        seed=seed, divisor=divisor, resolutions=grid_resolutions, widths=grid_widths,
        min_feasible_fraction=min_feasible_fraction, rule=RULE.format(min_pct=f"{min_feasible_fraction:.0%}"),
        cells=cells, chosen=chosen, narrowed=narrowed, seconds=round(seconds, 3),
        estimates=len(spaces) * samples * len(boards),
    )
    write_space_result(out_dir, result)
    return result


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave the objects alive when the block starts out of the garbage collector's passes until
    it ends (:func:`gc.freeze`): the loop makes millions of short-lived objects, and every full
    collection would walk the loaded libraries' objects again (about a seventh of the loop's
    time, ``benchmarks/space_optimize_speed.py``). A heap frozen by the caller is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _grid_resolutions(base: Space, resolutions: Sequence[int] | None) -> list[int] | None:
    if base.arch_type.rectangular:
        if resolutions:
            raise ConfigError(f"resolutions: space '{base.name}' does not search its input size (it comes from the "
                              "dataset's front end); give widths only")
        return None
    grid = list(resolutions) if resolutions else list(base.resolutions)
    for value in grid:
        if type(value) is not int or value < 1:
            raise ConfigError(f"resolutions: expected positive integers (pixels), got {value!r}")
    return list(dict.fromkeys(grid))


def _grid_widths(widths: Sequence[float] | None) -> list[float]:
    grid = [float(w) for w in (widths if widths else DEFAULT_WIDTHS)]
    for value in grid:
        if not value > 0:
            raise ConfigError(f"widths: expected positive width multipliers, got {value!r}")
    return list(dict.fromkeys(grid))


def _cell_space(experiment: Experiment, base: Space, resolution: int | None, width: float, divisor: int,
                splits: DatasetSplits) -> tuple[Space, dict[str, Any]]:
    """The cell's space and its options; ConfigError names the cell."""
    options = cell_options(experiment, base, resolution, width, divisor)
    label = (f"resolution {resolution}, " if resolution is not None else "") + f"width {width:g}"
    try:
        space = space_for_input(experiment.space.name, {**options, "input_channels": splits.input_channels,
                                                        "num_classes": splits.num_classes}, splits.input_size)
    except ConfigError as error:
        raise ConfigError(f"grid cell {label}: space.{error}") from None
    return space, options


def _stats(board: str, resolution: int | None, width: float, samples: int, macs: list[int],
           options: dict[str, Any]) -> CellStats:
    values = sorted(macs)
    count = len(values)
    quantiles = [values[(q * (count - 1) + QUANTILES // 2) // QUANTILES] for q in range(QUANTILES + 1)] if count else []
    return CellStats(board, resolution, width, samples, count, sum(values) / count if count else None, quantiles, options)


def _file_name(board: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", board).strip("-") or "board"
