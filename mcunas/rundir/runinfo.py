"""``config.yaml`` and ``run.json`` of a run directory: written by the search, read by everyone.

A run directory belongs to one experiment. ``config.yaml`` holds the resolved experiment as
run; a later run in the same directory must have the same config except for the keys in
:data:`EXECUTION_KEYS` (trial budget and how trials are executed), else :class:`RunDirError`.
``run.json`` records the storage URL, the study of each board, the objectives and each board's
limits (:func:`mcunas.estimators.budget.limits`, so the report needs no board file); it is
what the report and the Ray workers read to find the studies. Neither file holds a password:
both go through :func:`mcunas.secrets.redact` (see :mod:`mcunas.rundir.storage` for how a
run whose recorded URL hides its password is reopened).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mcunas.config import Experiment
from mcunas.errors import RunDirError
from mcunas.estimators import Board
from mcunas.estimators.budget import Limit, limits
from mcunas.io import atomic_write_text, read_user_json, read_user_text, write_json
from mcunas.rundir.layout import CONFIG_FILE, RUN_INFO_FILE, RunLayout, study_name
from mcunas.rundir.storage import check_storage_for, default_storage_url, resolve_storage_url
from mcunas.secrets import redact

# (section, key) pairs that may differ between runs in one run directory.
EXECUTION_KEYS: frozenset[tuple[str, str]] = frozenset(
    {
        ("search", "trials"),
        ("search", "workers"),
        ("search", "ray_address"),
        ("search", "cpus_per_worker"),
        ("search", "gpus_per_worker"),
        ("search", "storage_retry_s"),
        ("training", "device"),
    }
)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without :data:`EXECUTION_KEYS`, its storage URL redacted as stored."""
    result = {}
    for section, value in config.items():
        if isinstance(value, dict):
            value = {k: redact(v) if isinstance(v, str) and (section, k) == ("search", "storage") else v
                     for k, v in value.items() if (section, k) not in EXECUTION_KEYS}
        result[section] = value
    return result


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Key paths whose values differ between two config dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths = []
        for key in list(old) + [k for k in new if k not in old]:
            paths += _differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return paths
    return [] if old == new else [f"{prefix} ({old!r} -> {new!r})"]


def read_config(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """``config.yaml`` of ``run_dir``: its text and its mapping.

    Raises:
        RunDirError: the file is missing, unreadable, not YAML or not a mapping.
    """
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: {CONFIG_FILE} is missing")
    text = read_user_text(path, RunDirError, "the run's config")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RunDirError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a mapping at the top level")
    return text, data


def check_config(run_dir: Path, experiment: Experiment) -> None:
    """Raise RunDirError when ``run_dir/config.yaml`` holds a different experiment."""
    if not (run_dir / CONFIG_FILE).is_file():
        return
    _, stored = read_config(run_dir)
    differences = _differences(_comparable(stored), _comparable(experiment.to_dict()))
    if differences:
        shown = "; ".join(differences[:5]) + ("; ..." if len(differences) > 5 else "")
        raise RunDirError(
            f"{run_dir} holds a run of another configuration (differs in: {shown}); "
            f"use another --out directory or the original config"
        )


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """The ``run.json`` of ``run_dir`` as a dict.

    Raises:
        RunDirError: the file is missing, is not valid JSON or is not a JSON object.
    """
    path = run_dir / RUN_INFO_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: {RUN_INFO_FILE} is missing (not a mcunas run directory?)")
    info = read_user_json(path, RunDirError, RUN_INFO_FILE)
    if not isinstance(info, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return info


def recorded_limits(run_dir: Path, info: dict[str, Any]) -> dict[str, tuple[Limit, ...]] | None:
    """Board -> limits as ``run.json`` records them; None for a run.json without limits.

    Raises:
        RunDirError: a malformed ``limits`` entry.
    """
    stored = info.get("limits")
    if stored is None:
        return None
    try:
        return {str(board): tuple(Limit.from_dict(item) for item in items) for board, items in stored.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise RunDirError(f"{run_dir / RUN_INFO_FILE}: malformed 'limits' ({error})") from error


def prepare_run_dir(
    experiment: Experiment, run_dir: str | Path, boards: Sequence[Board], *, several_processes: bool
) -> RunLayout:
    """Create or reopen ``run_dir`` for ``experiment``; write ``config.yaml`` and ``run.json``.

    Args:
        experiment: the validated experiment.
        run_dir: the run directory (created if needed).
        boards: the experiment's boards, loaded, in config order.
        several_processes: trials run in several processes (Ray): the default storage is then
            the journal file instead of SQLite, and SQLite is refused.

    Returns:
        The layout; its ``storage_url`` is usable (variables expanded, password filled in) and
        is kept in memory only: the files record it redacted.

    Raises:
        RunDirError: ``run_dir`` holds a run of a different configuration.
        ConfigError: the storage is SQLite while trials run in several processes, or its URL
            needs an environment variable that is not set.
    """
    path = Path(run_dir).resolve()
    check_config(path, experiment)
    info = read_run_json(path) if (path / RUN_INFO_FILE).is_file() else {}
    chosen = experiment.search.storage or info.get("storage") or default_storage_url(path, several_processes)
    storage_url = resolve_storage_url(chosen)
    check_storage_for(storage_url, several_processes)
    path.mkdir(parents=True, exist_ok=True)
    studies = {board.name: study_name(experiment.name, board.name) for board in boards}
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    constraints = experiment.constraints
    info = {
        "mcunas_version": importlib.metadata.version("mcunas"),
        "storage": redact(storage_url),
        "studies": studies,
        "objectives": list(experiment.objectives),
        "limits": {board.name: [limit.to_dict() for limit in limits(
            board, constraints.max_latency_ms, max_activation_bytes=constraints.max_activation_bytes,
            max_param_bytes=constraints.max_param_bytes, max_arena_bytes=constraints.max_arena_bytes,
            max_model_bytes=constraints.max_model_bytes)] for board in boards},
        "created": info.get("created", now),
        "updated": now,
    }
    atomic_write_text(path / CONFIG_FILE, redact(experiment.to_yaml()))
    write_json(path / RUN_INFO_FILE, info)
    return RunLayout(path, storage_url, studies)
