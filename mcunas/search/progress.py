"""Progress of a search: one line per board.

Each line says, for one board's study: finished trials (COMPLETE or PRUNED) out of the budget,
how many were feasible, the best value so far of each objective among the feasible complete
trials (each objective on its own: the best accuracy and the lowest latency need not be one
model), the time since the search started and an estimate of the time left (the rate of this
run's trials so far). On a terminal the lines stay at the bottom and are redrawn in place as
trials finish, and log records are printed above them (:meth:`SearchProgress.log_handler`);
elsewhere (a file, a pipe, CI) each finished trial logs its board's line as a plain record.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from mcunas.secrets import RedactingFormatter

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

logger = logging.getLogger("mcunas.search")

# ANSI: cursor to the start of the line N lines up; clear the whole line.
_UP = "\x1b[{n}F"
_CLEAR = "\x1b[2K"


@dataclass
class BoardProgress:
    """What one board's line shows."""

    board: str
    total: int
    directions: Sequence[str]  # "maximize" / "minimize", one per objective
    objectives: Sequence[str]
    finished: int = 0
    feasible: int = 0
    finished_at_start: int = 0
    best: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.best = [None] * len(self.objectives)

    def add(self, trial: FrozenTrial) -> None:
        """Count a finished trial (COMPLETE or PRUNED); other states are ignored."""
        from optuna.trial import TrialState

        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            return
        self.finished += 1
        if trial.state != TrialState.COMPLETE or not trial.user_attrs.get("feasible", True):
            return
        self.feasible += 1
        for index, (value, direction) in enumerate(zip(trial.values or (), self.directions)):
            best = self.best[index]
            if best is None or (value > best if direction == "maximize" else value < best):
                self.best[index] = value

    def line(self, elapsed_s: float) -> str:
        """``board: 12/20 trials, 7 feasible, best accuracy 0.9312, latency_ms 3.41 | 0:01:05 elapsed, ETA 0:00:43``."""
        best = ", ".join(f"{name} {value:.4g}" for name, value in zip(self.objectives, self.best) if value is not None)
        parts = [f"{self.board}: {self.finished}/{self.total} trials", f"{self.feasible} feasible"]
        if best:
            parts.append(f"best {best}")
        return f"{', '.join(parts)} | {_clock(elapsed_s)} elapsed, ETA {self._eta(elapsed_s)}"

    def _eta(self, elapsed_s: float) -> str:
        left = max(0, self.total - self.finished)
        if left == 0:
            return "done"
        run = self.finished - self.finished_at_start
        return _clock(elapsed_s / run * left) if run > 0 and elapsed_s > 0 else "?"


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class SearchProgress:
    """The progress lines of a search, live on a terminal, plain log records elsewhere.

    Args:
        stream: where live lines go (default ``sys.stderr``).
        live: redraw lines in place; default: whether ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.boards: dict[str, BoardProgress] = {}
        self._start = time.monotonic()
        self._drawn = 0  # live lines currently on the screen
        self._lock = threading.Lock()

    def begin(self, board: str, total: int, objectives: Sequence[str], directions: Sequence[str],
              trials: Iterable[FrozenTrial] = ()) -> None:
        """Add a board's line; ``trials`` are those its study already holds (a resumed run)."""
        entry = BoardProgress(board, total, list(directions), list(objectives))
        for trial in trials:
            entry.add(trial)
        entry.finished_at_start = entry.finished
        with self._lock:
            self.boards[board] = entry
            self._redraw()

    def trial_finished(self, board: str, trial: FrozenTrial) -> None:
        """Count a trial of ``board`` that was just told; redraw (live) or log its line."""
        entry = self.boards.get(board)
        if entry is None:
            return
        entry.add(trial)
        if self.live:
            with self._lock:
                self._redraw()
        else:
            logger.info("progress %s", entry.line(time.monotonic() - self._start))

    def close(self) -> None:
        """Leave the last live lines on the screen, with the cursor below them."""
        with self._lock:
            self._drawn = 0

    def lines(self) -> list[str]:
        """The current line of every board."""
        elapsed = time.monotonic() - self._start
        return [entry.line(elapsed) for entry in self.boards.values()]

    def write_above(self, text: str) -> None:
        """Print ``text`` (a finished log record) above the live lines."""
        with self._lock:
            self._clear()
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self._redraw()

    def log_handler(self) -> logging.Handler:
        """A logging handler for the live mode: records go above the lines, passwords hidden."""
        handler = _AboveLines(self)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        return handler

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write(_UP.format(n=self._drawn) + "".join(f"{_CLEAR}\n" for _ in range(self._drawn)))
            self.stream.write(_UP.format(n=self._drawn))
            self._drawn = 0

    def _redraw(self) -> None:
        if not self.live:
            return
        self._clear()
        lines = self.lines()
        self.stream.write("".join(f"{_CLEAR}{line}\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)


class _AboveLines(logging.Handler):
    def __init__(self, progress: SearchProgress) -> None:
        super().__init__()
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress.write_above(self.format(record))
        except Exception:  # a logging handler must not raise (logging.Handler.handleError's contract)
            self.handleError(record)
