"""Read a run directory into what the report shows: trial records per board, limits, config.

Only reads: the Optuna storage named by ``run.json`` is opened but never written, and a
storage file that does not exist is reported, not created (:mod:`mcunas.rundir`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcunas.errors import McunasError, RunDirError
from mcunas.estimators.budget import Limit, limits
from mcunas.rundir.records import TrialRecord, read_trial_records
from mcunas.rundir.runinfo import read_config, read_run_json, recorded_limits
from mcunas.rundir.storage import open_run_storage
from mcunas.secrets import redact


@dataclass
class RunData:
    """Everything the report shows of one run directory.

    Attributes:
        path: the run directory.
        label: a short name that tells this run apart from the other runs of the report.
        config_text: ``config.yaml`` exactly as stored.
        objectives: the study objectives in config order, e.g. ``["accuracy", "latency_ms"]``.
        boards: board names in study order.
        trials: every trial of every board's study.
        limits: per board name, the limits its candidates had to meet.
    """

    path: Path
    label: str
    config_text: str
    objectives: list[str]
    boards: list[str]
    trials: list[TrialRecord] = field(default_factory=list)
    limits: dict[str, tuple[Limit, ...]] = field(default_factory=dict)

    def board_trials(self, board: str) -> list[TrialRecord]:
        return [t for t in self.trials if t.board == board]

    def limit(self, board: str, metric: str) -> float | None:
        """The limit on ``metric`` (``sram_bytes``, ``flash_bytes``, ``latency_ms``) on ``board``, if any."""
        return next((limit.value for limit in self.limits.get(board, ()) if limit.metric == metric), None)


def load_run(run_dir: Path, label: str | None = None, *, storage_url: str | None = None) -> RunData:
    """Read ``run_dir``; raise :class:`RunDirError` naming the path and what is missing.

    ``storage_url`` replaces the storage ``run.json`` records (which hides a password). The
    config text is shown with passwords hidden also for run directories written before
    ``config.yaml`` was redacted.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory does not exist")
    run_info = read_run_json(run_dir)
    config_text, config = read_config(run_dir)
    config_text = redact(config_text)
    storage = open_run_storage(run_dir, storage_url or run_info.get("storage"))
    studies = _study_names(run_dir, run_info)
    run_label = label or run_dir.name
    trials = read_trial_records(run_dir, storage, studies, run_label)
    if not trials:
        raise RunDirError(f"{run_dir}: the studies {sorted(studies.values())} hold no trials")
    objectives = [str(o) for o in run_info.get("objectives") or config.get("objectives") or ["accuracy"]]
    board_limits = recorded_limits(run_dir, run_info)
    if board_limits is None:
        board_limits = {board: _config_limits(board, config, run_dir) for board in studies}
    return RunData(run_dir, run_label, config_text, objectives, list(studies), trials, board_limits)


def _study_names(run_dir: Path, run_info: dict[str, Any]) -> dict[str, str]:
    """Board name -> Optuna study name, from ``run.json["studies"]``."""
    studies = run_info.get("studies")
    if not isinstance(studies, dict) or not studies:
        raise RunDirError(f"{run_dir / 'run.json'}: 'studies' (board -> study name) is missing or empty")
    return {str(board): str(name) for board, name in studies.items()}


def _config_limits(board: str, config: dict[str, Any], run_dir: Path) -> tuple[Limit, ...]:
    """The limits of ``board`` for a ``run.json`` that does not record them, from the config.

    The board is looked up among the config's board files (relative to the run directory when
    they were moved with it) and in the catalog.

    Raises:
        RunDirError: no board of that name can be loaded.
    """
    from mcunas.estimators import load_board

    max_latency_ms = (config.get("constraints") or {}).get("max_latency_ms")
    latency = float(max_latency_ms) if isinstance(max_latency_ms, (int, float)) else None
    problems = []
    for entry in [*(str(b) for b in config.get("boards") or ()), board]:
        candidate = Path(entry)
        ref = str(candidate if candidate.is_absolute() or not (run_dir / candidate).is_file() else run_dir / candidate)
        try:
            loaded = load_board(ref)
        except McunasError as error:
            problems.append(str(error))
            continue
        if loaded.name == board:
            return limits(loaded, latency)
    raise RunDirError(f"{run_dir}: cannot find board {board!r} of the run ({'; '.join(problems) or 'not in the config'})")
