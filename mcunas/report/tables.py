"""The report's tables as rows of raw values (bytes, ms, 0..1 accuracies), shared by CSV and HTML."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcunas.report.load import RunData
from mcunas.rundir.records import TrialRecord
from mcunas.report.pareto import pareto_front

# Cost keys written to trials.csv, in this order (architecture.md, "Cost").
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "macs",
    "params",
    "arena_bytes",
    "arena_bytes_host",
    "activation_bytes",
    "param_bytes",
    "sram_bytes",
    "model_bytes",
    "flash_bytes",
    "latency_ms",
    "latency_ms_low",
    "latency_ms_high",
    "fits",
)
TRIAL_COLUMNS: tuple[str, ...] = (
    "run", "board", "number", "state", "feasible", "pareto", "violations", "block_string",
    *ESTIMATE_COLUMNS,
    "accuracy_val", "estimate_seconds", "train_seconds", "epochs", "distilled", "duration_s",
)
PARETO_COLUMNS: tuple[str, ...] = (
    "run", "board", "number", "block_string", "macs", "params", "latency_ms", "latency_ms_low", "latency_ms_high",
    "sram_bytes", "flash_bytes", "accuracy_val", "accuracy_test", "accuracy_float", "accuracy_int8", "int8_drop_pp", "exported",
)
VALIDATION_COLUMNS: tuple[str, ...] = (
    "run", "board", "number", "block_string",
    "arena_bytes_measured", "arena_bytes_predicted", "arena_error_pct", "arena_bytes_predicted_target",
    "model_bytes", "model_bytes_predicted", "model_error_pct",
    "accuracy_float", "accuracy_int8", "int8_drop_pp", "top1_agreement",
)


@dataclass(frozen=True)
class BoardSummary:
    """The headline of one run on one board: the most accurate candidate that fits."""

    run: str
    board: str
    trials: int
    completed: int
    feasible: int
    pareto: int
    exported: int
    best: TrialRecord | None

    @property
    def feasible_share(self) -> float | None:
        """Feasible completed trials over completed trials, 0..1."""
        return self.feasible / self.completed if self.completed else None


def pareto_members(run: RunData, board: str) -> list[TrialRecord]:
    """The run's Pareto set on ``board`` under the run's own objectives, by trial number."""
    return sorted(pareto_front(run.board_trials(board), run.objectives), key=lambda t: t.number)


def trial_rows(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """One row per trial of every run and board (``TRIAL_COLUMNS``)."""
    rows = []
    for run in runs:
        for board in run.boards:
            members = {t.number for t in pareto_members(run, board)}
            for t in sorted(run.board_trials(board), key=lambda t: t.number):
                rows.append(
                    {
                        "run": t.run,
                        "board": t.board,
                        "number": t.number,
                        "state": t.state,
                        "feasible": t.feasible,
                        "pareto": t.number in members,
                        "violations": "; ".join(t.violations),
                        "block_string": t.block_string,
                        **{key: t.estimates.get(key) for key in ESTIMATE_COLUMNS},
                        "accuracy_val": t.accuracy_val,
                        "estimate_seconds": t.estimate_seconds,
                        "train_seconds": t.train_seconds,
                        "epochs": t.epochs,
                        "distilled": t.distilled,
                        "duration_s": t.duration_s,
                    }
                )
    return rows


def pareto_rows(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """One row per Pareto member of every run and board (``PARETO_COLUMNS``)."""
    rows = []
    for run in runs:
        for board in run.boards:
            for t in pareto_members(run, board):
                validation = t.validation or {}
                rows.append(
                    {
                        "run": t.run,
                        "board": t.board,
                        "number": t.number,
                        "block_string": t.block_string,
                        **{key: t.estimates.get(key) for key in ("macs", "params", "latency_ms", "latency_ms_low",
                                                                  "latency_ms_high", "sram_bytes", "flash_bytes")},
                        "accuracy_val": t.accuracy_val,
                        "accuracy_test": (t.final or {}).get("accuracy_test"),
                        "accuracy_float": validation.get("accuracy_float"),
                        "accuracy_int8": validation.get("accuracy_int8"),
                        "int8_drop_pp": validation.get("int8_drop_pp"),
                        "exported": t.validation is not None,
                    }
                )
    return rows


def validation_rows(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """Measured against predicted memory of every exported model (``VALIDATION_COLUMNS``).

    Errors are ``100 * (predicted - measured) / measured``: positive means the estimator
    over-predicted.
    """
    rows = []
    for run in runs:
        for t in sorted(run.trials, key=lambda t: (t.board, t.number)):
            if t.validation is None:
                continue
            v = t.validation
            rows.append(
                {
                    "run": t.run,
                    "board": t.board,
                    "number": t.number,
                    "block_string": t.block_string,
                    "arena_bytes_measured": v.get("arena_bytes_measured"),
                    "arena_bytes_predicted": v.get("arena_bytes_predicted"),
                    "arena_error_pct": error_pct(v.get("arena_bytes_predicted"), v.get("arena_bytes_measured")),
                    "arena_bytes_predicted_target": v.get("arena_bytes_predicted_target"),
                    "model_bytes": v.get("model_bytes"),
                    "model_bytes_predicted": v.get("model_bytes_predicted"),
                    "model_error_pct": error_pct(v.get("model_bytes_predicted"), v.get("model_bytes")),
                    "accuracy_float": v.get("accuracy_float"),
                    "accuracy_int8": v.get("accuracy_int8"),
                    "int8_drop_pp": v.get("int8_drop_pp"),
                    "top1_agreement": v.get("top1_agreement"),
                }
            )
    return rows


def board_summaries(runs: Sequence[RunData]) -> list[BoardSummary]:
    """One headline per run and board."""
    summaries = []
    for run in runs:
        for board in run.boards:
            trials = run.board_trials(board)
            completed = [t for t in trials if t.state == "COMPLETE"]
            fitting = [t for t in completed if t.feasible and t.accuracy_val is not None]
            best = max(fitting, key=lambda t: (t.accuracy_val, -t.number), default=None)
            summaries.append(
                BoardSummary(
                    run=run.label,
                    board=board,
                    trials=len(trials),
                    completed=len(completed),
                    feasible=sum(t.feasible for t in completed),
                    pareto=len(pareto_members(run, board)),
                    exported=sum(t.validation is not None for t in trials),
                    best=best,
                )
            )
    return summaries


def error_pct(predicted: Any, measured: Any) -> float | None:
    """Relative error of a prediction in percent, or None when a value is missing or zero."""
    if not isinstance(predicted, (int, float)) or not isinstance(measured, (int, float)) or not measured:
        return None
    return 100.0 * (predicted - measured) / measured


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """CSV text with a header row; None is written as an empty field."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in columns})
    return buffer.getvalue()
