"""Progress lines of a search: one per board, live on a terminal, plain log records elsewhere."""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import subprocess
import sys

import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from mcunas.config import parse_experiment
from mcunas.search import run_search
from mcunas.search.progress import SearchProgress
from test_search import BOARD, tiny_config


def _trial(accuracy: float, latency_ms: float, feasible: bool = True, state=TrialState.COMPLETE):
    return create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, state=state,
                        values=None if state != TrialState.COMPLETE else [accuracy, latency_ms],
                        user_attrs={"feasible": feasible})


def test_line_counts_finished_and_feasible_trials_and_the_best_of_each_objective():
    progress = SearchProgress(io.StringIO(), live=False)
    progress.begin("b", 5, ["accuracy", "latency_ms"], ["maximize", "minimize"],
                   [_trial(0.5, 9.0), _trial(0.0, 1.0, feasible=False), _trial(0, 0, state=TrialState.FAIL)])
    progress.trial_finished("b", _trial(0.9, 4.0))
    progress.trial_finished("b", _trial(0.7, 2.5))
    progress.trial_finished("b", _trial(0, 0, state=TrialState.PRUNED))
    [line] = progress.lines()
    assert line.startswith("b: 5/5 trials, 3 feasible, best accuracy 0.9, latency_ms 2.5 | 0:00:00 elapsed, ETA done")


def test_eta_comes_from_this_runs_rate():
    progress = SearchProgress(io.StringIO(), live=False)
    progress.begin("b", 4, ["accuracy"], ["maximize"], [_trial(0.5, 0)])
    assert progress.lines()[0].endswith("ETA ?")
    entry = progress.boards["b"]
    entry.add(_trial(0.6, 0))  # one trial of this run in 10 s: two left take 20 s
    assert entry.line(10.0) == "b: 2/4 trials, 2 feasible, best accuracy 0.6 | 0:00:10 elapsed, ETA 0:00:20"


def test_live_lines_are_redrawn_in_place_and_logs_go_above_them():
    stream = io.StringIO()
    progress = SearchProgress(stream, live=True)
    progress.begin("board-a", 2, ["accuracy"], ["maximize"])
    progress.begin("board-b", 2, ["accuracy"], ["maximize"])
    logger = logging.getLogger("mcunas.test_progress")
    logger.addHandler(progress.log_handler())
    logger.propagate = False
    try:
        logger.warning("storage postgresql://u:pw@h/db unreachable")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    progress.trial_finished("board-a", _trial(0.8, 0))
    screen = _render(stream.getvalue())
    assert screen[-2].startswith("board-a: 1/2 trials, 1 feasible, best accuracy 0.8")
    assert screen[-1].startswith("board-b: 0/2 trials, 0 feasible")
    assert [line for line in screen if "unreachable" in line] == [screen[0]]
    assert "u:***@h" in screen[0] and "pw" not in stream.getvalue()


def _render(output: str) -> list[str]:
    """The screen a terminal shows for ``output`` (cursor-up-N-lines and clear-line codes only)."""
    lines, row = [""], 0
    for token in re.split(r"(\x1b\[\d+F|\x1b\[2K|\n)", output):
        if token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif token.startswith("\x1b[") and token.endswith("F"):
            row -= int(token[2:-1])
        elif token == "\x1b[2K":
            lines[row] = ""
        elif token:
            lines[row] += token
    return [line for line in lines if line]


def test_plain_progress_records_in_a_search(tmp_path, caplog):
    config = parse_experiment(tiny_config(search={"trials": 2}))
    with caplog.at_level(logging.INFO, logger="mcunas"):
        run_search(config, tmp_path / "run", finalize=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress ")]
    assert len(lines) == 2 and lines[-1].startswith(f"progress {BOARD}: 2/2 trials")


def test_cli_on_a_terminal_shows_live_lines(tmp_path):
    """`mcunas search` with its stderr on a pseudo-terminal redraws the board's line in place."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(search={"trials": 2})))
    leader, follower = pty.openpty()
    try:
        process = subprocess.run([sys.executable, "-m", "mcunas.cli", "search", str(config), "--out",
                                  str(tmp_path / "run"), "--no-finalize"], stderr=follower, stdout=subprocess.PIPE,
                                 timeout=300)
        os.close(follower)
        follower = -1
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once everything was read
                break
            if not chunk:
                break
            output += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert process.returncode == 0
    text = output.decode()
    assert "\x1b[2K" in text and "\x1b[1F" in text
    assert _render(text.replace("\r\n", "\n"))[-1].startswith(f"{BOARD}: 2/2 trials")
    assert "progress " not in text, "no plain records on a terminal"
