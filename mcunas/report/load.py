"""Read a run directory into plain records: trials per board, exports, budgets, config.

Only reads: the Optuna storage named by ``run.json`` is opened but never written, and a
storage file that does not exist is reported, not created.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcunas.errors import McunasError, RunDirError
from mcunas.search.rundir import read_run_json

SQLITE_PREFIX = "sqlite:///"
JOURNAL_PREFIX = "journal:"


@dataclass(frozen=True)
class TrialRecord:
    """One Optuna trial of one board's study, as the report needs it.

    Attributes:
        run: label of the run directory the trial belongs to.
        board: board name (the study is ``<name>:<board>``).
        number: Optuna trial number within the board's study.
        state: Optuna state name: ``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ``WAITING``.
        feasible: the trial fits the board budgets and constraints (``user_attrs["feasible"]``).
        violations: human-readable budget violations, empty when feasible.
        block_string: the architecture's short summary.
        arch_key: identifies the architecture (trials of the same Arch share it).
        estimates: the estimator's Cost dict (bytes, milliseconds, MACs, params).
        accuracy_val: validation accuracy, 0..1, or None when the trial did not train.
        estimate_seconds: wall time of sampling and estimating the candidate in seconds, if recorded.
        train_seconds: wall time of the trial's training in seconds, if recorded.
        epochs: training epochs of the trial, if recorded.
        distilled: whether the trial was trained with distillation, if recorded.
        duration_s: wall time of the whole trial in seconds (Optuna start to completion).
        final: ``final/<board>/<number>/metrics.json`` of the retrained model, else None.
        validation: the export's ``validation.json`` when this trial was exported, else None.
    """

    run: str
    board: str
    number: int
    state: str
    feasible: bool
    violations: tuple[str, ...]
    block_string: str
    arch_key: str
    estimates: dict[str, Any]
    accuracy_val: float | None
    estimate_seconds: float | None
    train_seconds: float | None
    epochs: int | None
    distilled: bool | None
    duration_s: float | None
    final: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None

    def metric(self, name: str) -> float | None:
        """The value of an objective or estimate: ``accuracy`` (0..1) or a Cost key."""
        value = self.accuracy_val if name == "accuracy" else self.estimates.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value)


@dataclass(frozen=True)
class Budget:
    """The limits a board's candidates must meet; None where there is no limit."""

    sram_bytes: int | None = None
    flash_bytes: int | None = None
    latency_ms: float | None = None

    # Attributes are named after the Cost fields they limit.

    def limit(self, metric: str) -> float | None:
        """The limit on ``metric`` (``sram_bytes``, ``flash_bytes``, ``latency_ms``), if any."""
        return getattr(self, metric, None)


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
        budgets: limits per board name.
    """

    path: Path
    label: str
    config_text: str
    objectives: list[str]
    boards: list[str]
    trials: list[TrialRecord] = field(default_factory=list)
    budgets: dict[str, Budget] = field(default_factory=dict)

    def board_trials(self, board: str) -> list[TrialRecord]:
        return [t for t in self.trials if t.board == board]


def load_run(run_dir: Path, label: str | None = None) -> RunData:
    """Read ``run_dir``; raise :class:`RunDirError` naming the path and what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory does not exist")
    run_info = read_run_json(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir}: config.yaml is missing")
    config_text = config_path.read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as error:
        raise RunDirError(f"{config_path}: not valid YAML ({error})") from error
    if not isinstance(config, dict):
        raise RunDirError(f"{config_path}: expected a mapping at the top level")

    storage = _open_storage(run_dir, run_info)
    studies = _study_names(run_dir, run_info)
    finals = _read_per_trial(run_dir, "final", "metrics.json")
    exports = _read_per_trial(run_dir, "exports", "validation.json")
    run_label = label or run_dir.name
    trials: list[TrialRecord] = []
    for board, study_name in studies.items():
        trials.extend(
            _read_trials(storage, study_name, board, run_label, finals.get(board, {}), exports.get(board, {}), run_dir)
        )
    if not trials:
        raise RunDirError(f"{run_dir}: the studies {sorted(studies.values())} hold no trials")

    objectives = [str(o) for o in run_info.get("objectives") or config.get("objectives") or ["accuracy"]]
    max_latency_ms = (config.get("constraints") or {}).get("max_latency_ms")
    budgets = {
        board: _board_budget(board, config, run_dir, max_latency_ms)
        for board in studies
    }
    return RunData(run_dir, run_label, config_text, objectives, list(studies), trials, budgets)


def _study_names(run_dir: Path, run_info: dict[str, Any]) -> dict[str, str]:
    """Board name -> Optuna study name, from ``run.json["studies"]``."""
    studies = run_info.get("studies")
    if not isinstance(studies, dict) or not studies:
        raise RunDirError(f"{run_dir / 'run.json'}: 'studies' (board -> study name) is missing or empty")
    return {str(board): str(name) for board, name in studies.items()}


def _open_storage(run_dir: Path, run_info: dict[str, Any]) -> Any:
    """Open the run's Optuna storage; a storage file that does not exist is an error, not created.

    ``run.json["storage"]`` is an SQLAlchemy URL (``sqlite:///<path>``, ``postgresql://...``) or
    a JournalStorage file as ``journal:<path>`` or a plain path (see :mod:`mcunas.search`). A
    relative SQLite or journal path is taken relative to the run directory; when the recorded
    file is gone but the run directory holds ``study.db`` or ``journal.log`` (the directory was
    moved), that file is used.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    url = run_info.get("storage")
    if not isinstance(url, str) or not url:
        raise RunDirError(f"{run_dir / 'run.json'}: 'storage' (the Optuna storage URL) is missing")
    if "://" in url:
        if url.startswith(SQLITE_PREFIX):
            url = f"{SQLITE_PREFIX}{_existing_file(run_dir, Path(url[len(SQLITE_PREFIX):]), 'study.db', url)}"
        try:
            return optuna.storages.RDBStorage(url)
        except SQLAlchemyError as error:
            raise RunDirError(f"{run_dir}: cannot read the Optuna storage {url} ({error})") from error
    path = _existing_file(run_dir, Path(url.removeprefix(JOURNAL_PREFIX)), "journal.log", url)
    lock = optuna.storages.journal.JournalFileOpenLock(str(path))
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock))


def _existing_file(run_dir: Path, recorded: Path, default_name: str, url: str) -> Path:
    candidates = [recorded if recorded.is_absolute() else run_dir / recorded, run_dir / default_name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise RunDirError(f"{run_dir}: the Optuna storage {url} does not exist (no {default_name} in the run directory)")


def _read_trials(
    storage: Any,
    study_name: str,
    board: str,
    run_label: str,
    finals: dict[int, dict[str, Any]],
    exports: dict[int, dict[str, Any]],
    run_dir: Path,
) -> list[TrialRecord]:
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as error:
        raise RunDirError(f"{run_dir}: study {study_name!r} (board {board}) is not in the storage") from error
    records = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        epochs = attrs.get("epochs")
        distilled = attrs.get("distilled")
        records.append(
            TrialRecord(
                run=run_label,
                board=board,
                number=trial.number,
                state=trial.state.name,
                feasible=bool(attrs.get("feasible", False)),
                violations=tuple(str(v) for v in attrs.get("violations") or ()),
                block_string=str(attrs.get("block_string", "")),
                arch_key=str(attrs.get("arch_key") or json.dumps(attrs.get("arch"), sort_keys=True)),
                estimates=dict(attrs.get("estimates") or {}),
                accuracy_val=_number(attrs.get("accuracy_val")),
                estimate_seconds=_number(attrs.get("estimate_seconds")),
                train_seconds=_number(attrs.get("train_seconds")),
                epochs=int(epochs) if isinstance(epochs, int) else None,
                distilled=bool(distilled) if isinstance(distilled, bool) else None,
                duration_s=duration,
                final=finals.get(trial.number),
                validation=exports.get(trial.number),
            )
        )
    return records


def _number(value: Any) -> float | None:
    """A stored number as float; None for a missing or non-numeric value."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _read_per_trial(run_dir: Path, stage: str, file_name: str) -> dict[str, dict[int, dict[str, Any]]]:
    """``<stage>/<board>/<number>/<file_name>`` JSON files -> {board: {number: contents}}."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(run_dir.glob(f"{stage}/*/*/{file_name}")):
        number_dir = path.parent
        if not number_dir.name.isdigit():
            continue
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RunDirError(f"{path}: not valid JSON ({error})") from error
        found.setdefault(number_dir.parent.name, {})[int(number_dir.name)] = contents
    return found


def _board_budget(board: str, config: dict[str, Any], run_dir: Path, max_latency_ms: Any) -> Budget:
    """The limits on the Cost fields (:func:`mcunas.estimators.budget.limits`) of ``board``.

    The board is looked up among the config's board files (relative to the run directory when
    they were moved with it) and in the catalog.

    Raises:
        RunDirError: no board of that name can be loaded.
    """
    from mcunas.estimators import load_board
    from mcunas.estimators.budget import limits

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
            values = {limit.metric: limit.value for limit in limits(loaded, latency)}
            return Budget(int(values["sram_bytes"]), int(values["flash_bytes"]), values.get("latency_ms"))
    raise RunDirError(f"{run_dir}: cannot find board {board!r} of the run ({'; '.join(problems) or 'not in the config'})")
