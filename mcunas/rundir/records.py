"""Trial records: one Optuna trial of a board's study, joined with its retrained and exported files.

The search writes each trial's user attributes (documented in docs/architecture.md: ``arch``,
``arch_key``, ``block_string``, ``board``, ``estimates``, ``feasible``, ``violations``,
``accuracy_val``, ...), ``final/<board>/<number>/metrics.json`` and
``exports/<board>/<number>/validation.json``; :func:`read_trial_records` reads them back as
plain :class:`TrialRecord` values for the report and any other reader.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcunas.errors import RunDirError
from mcunas.io import read_user_json


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


def read_trial_records(run_dir: Path, storage: Any, studies: dict[str, str], run_label: str) -> list[TrialRecord]:
    """Every trial of every board's study (``studies``: board -> study name) in ``storage``,
    with the final metrics and export validation of the trials that have them.

    Raises:
        RunDirError: a study is not in the storage, or a metrics/validation file is not JSON.
    """
    finals = _read_per_trial(run_dir, "final", "metrics.json")
    exports = _read_per_trial(run_dir, "exports", "validation.json")
    records: list[TrialRecord] = []
    for board, study_name in studies.items():
        records.extend(
            _study_records(storage, study_name, board, run_label, finals.get(board, {}), exports.get(board, {}), run_dir)
        )
    return records


def _study_records(
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
        contents = read_user_json(path, RunDirError, file_name)
        found.setdefault(number_dir.parent.name, {})[int(number_dir.name)] = contents
    return found


