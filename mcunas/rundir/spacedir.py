"""The space-optimization folder: what ``mcunas space optimize`` writes and the report reads.

A space optimization is not a search run (no study, no trials): it samples architectures of a
grid of narrowed spaces (input resolution x width multiplier), estimates them on every board
and keeps statistics. Its folder::

    OUT_DIR/
      space_optimize.json     the result: grid, samples, rule, per (cell, board) statistics, choices
      cells.csv               the same statistics as a table, one row per (board, cell)
      narrowed/<board>.yaml   the experiment narrowed to the board's chosen cell (for mcunas search)
      report.html, figures/   written by the report (mcunas.report.write_report)

``space_optimize.json`` holds :meth:`SpaceResult.to_dict` with ``"kind": "space_optimize"``.
MACs distributions are stored as :data:`QUANTILES` + 1 quantiles of the feasible models' MACs
(the 0th, 1st, ... 100th percentile), enough to draw their CDF.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcunas.errors import RunDirError
from mcunas.io import atomic_write_text, read_user_json, write_json

RESULT_FILE = "space_optimize.json"
CELLS_FILE = "cells.csv"
NARROWED_DIR = "narrowed"
KIND = "space_optimize"
# The feasible models' MACs are kept as the percentiles 0, 1, ..., QUANTILES.
QUANTILES = 100
CELL_COLUMNS = ("board", "resolution", "width", "samples", "feasible", "feasible_fraction", "macs_mean",
                "macs_median", "macs_p90", "macs_max", "chosen")


@dataclass(frozen=True)
class CellStats:
    """The sampled architectures of one cell of the grid on one board.

    Attributes:
        board: the board name.
        resolution: the cell's input side (pixels), or None where the space's input size is not
            searched (dscnn).
        width: the cell's width multiplier.
        samples: architectures drawn.
        feasible: how many fit the board's limits and the experiment's constraints.
        macs_mean: mean MACs of the feasible ones (None when none is).
        macs_quantiles: percentiles 0..100 of the feasible ones' MACs (empty when none is).
        space_options: the cell's space options (the config's, narrowed).
    """

    board: str
    resolution: int | None
    width: float
    samples: int
    feasible: int
    macs_mean: float | None
    macs_quantiles: list[int] = field(default_factory=list)
    space_options: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible_fraction(self) -> float:
        return self.feasible / self.samples if self.samples else 0.0

    @property
    def label(self) -> str:
        """``r28 x0.75`` (the resolution is left out where it is not searched)."""
        return (f"r{self.resolution} " if self.resolution is not None else "") + f"x{self.width:g}"

    def same_cell(self, other: CellStats) -> bool:
        return (self.resolution, self.width) == (other.resolution, other.width)

    def row(self, chosen: bool) -> dict[str, Any]:
        """The cells.csv row."""
        quantiles = self.macs_quantiles
        return {
            "board": self.board, "resolution": self.resolution, "width": self.width, "samples": self.samples,
            "feasible": self.feasible, "feasible_fraction": round(self.feasible_fraction, 6),
            "macs_mean": None if self.macs_mean is None else round(self.macs_mean, 1),
            "macs_median": quantiles[QUANTILES // 2] if quantiles else None,
            "macs_p90": quantiles[QUANTILES * 9 // 10] if quantiles else None,
            "macs_max": quantiles[-1] if quantiles else None, "chosen": chosen,
        }


@dataclass
class SpaceResult:
    """A whole space optimization.

    Attributes:
        experiment: the experiment's name; config: the resolved experiment (its ``to_dict()``).
        space: the space name.
        samples: architectures drawn per cell; seed: their seed (the same draws in every cell).
        divisor: channel counts of the scaled spaces are multiples of it.
        resolutions, widths: the grid (resolutions None for a space without them).
        min_feasible_fraction: cells with a smaller feasible fraction are chosen only when no
            cell reaches it.
        rule: the selection rule, in words.
        cells: one entry per (board, cell).
        chosen: board -> its chosen cell.
        narrowed: board -> the narrowed config's path, relative to the folder.
        seconds: wall time of the sampling and estimation.
        estimates: estimates made (samples x cells x boards).
    """

    experiment: str
    config: dict[str, Any]
    space: str
    samples: int
    seed: int
    divisor: int
    resolutions: list[int] | None
    widths: list[float]
    min_feasible_fraction: float
    rule: str
    cells: list[CellStats]
    chosen: dict[str, CellStats]
    narrowed: dict[str, str]
    seconds: float
    estimates: int

    @property
    def boards(self) -> list[str]:
        return list(dict.fromkeys(cell.board for cell in self.cells))

    def board_cells(self, board: str) -> list[CellStats]:
        return [cell for cell in self.cells if cell.board == board]

    def grid_edges(self, board: str) -> list[str]:
        """Where the board's chosen cell lies on the edge of a grid axis with more than one value
        (``"largest resolution"``, ``"smallest width"``, ...): a wider grid may hold a better cell."""
        cell = self.chosen.get(board)
        if cell is None:
            return []
        edges = []
        for axis, value, values in (("resolution", cell.resolution, self.resolutions or []), ("width", cell.width, self.widths)):
            if len(values) > 1 and value in (min(values), max(values)):
                edges.append(f"{'largest' if value == max(values) else 'smallest'} {axis}")
        return edges

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chosen"] = {board: {"resolution": cell.resolution, "width": cell.width} for board, cell in self.chosen.items()}
        return {"kind": KIND, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpaceResult:
        values = {key: value for key, value in data.items() if key != "kind"}
        cells = [CellStats(**cell) for cell in values.pop("cells")]
        chosen = {}
        for board, where in values.pop("chosen").items():
            chosen[board] = next(c for c in cells if c.board == board and (c.resolution, c.width) ==
                                 (where["resolution"], where["width"]))
        return cls(cells=cells, chosen=chosen, **values)

    def cells_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CELL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for cell in self.cells:
            writer.writerow(cell.row(self.chosen[cell.board] is cell))
        return out.getvalue()


def is_space_dir(path: Path) -> bool:
    """Whether ``path`` is a space-optimization folder (it holds :data:`RESULT_FILE`)."""
    return (Path(path) / RESULT_FILE).is_file()


def write_space_result(out_dir: Path, result: SpaceResult) -> None:
    """Write ``space_optimize.json`` and ``cells.csv`` into ``out_dir`` (atomically)."""
    write_json(Path(out_dir) / RESULT_FILE, result.to_dict())
    atomic_write_text(Path(out_dir) / CELLS_FILE, result.cells_csv())


def read_space_result(out_dir: Path) -> SpaceResult:
    """Read a space-optimization folder; RunDirError names the file and what is wrong."""
    path = Path(out_dir) / RESULT_FILE
    data = read_user_json(path, RunDirError, "space optimization result")
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise RunDirError(f"{path}: not a space optimization result (expected \"kind\": \"{KIND}\")")
    try:
        return SpaceResult.from_dict(data)
    except (KeyError, TypeError, StopIteration) as error:
        raise RunDirError(f"{path}: incomplete space optimization result ({type(error).__name__}: {error})") from None
