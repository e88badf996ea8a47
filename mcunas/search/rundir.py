"""The run directory of a search: config check, ``run.json``, the Optuna storage.

A run directory belongs to one experiment. ``config.yaml`` holds the resolved experiment as
run; a later run in the same directory must have the same config except for the keys in
:data:`EXECUTION_KEYS` (trial budget and how trials are executed), else :class:`RunDirError`.
``run.json`` records the storage URL and the study of each board; it is what the report and
the Ray workers read to find the studies.

Storage URLs: any SQLAlchemy URL Optuna's RDBStorage accepts (``sqlite:///abs/study.db``, the
default), or the path of an Optuna JournalStorage file (the default when trials run in several
processes, since SQLite serializes writers badly); opened by
:func:`mcunas.search.distributed.open_storage`.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcunas.errors import RunDirError
from mcunas.io import atomic_write_text, write_json

# (section, key) pairs that may differ between runs in one run directory.
EXECUTION_KEYS: frozenset[tuple[str, str]] = frozenset(
    {
        ("search", "trials"),
        ("search", "workers"),
        ("search", "ray_address"),
        ("search", "cpus_per_worker"),
        ("search", "gpus_per_worker"),
        ("training", "device"),
    }
)

@dataclass
class RunLayout:
    """Where a search keeps its state.

    Attributes:
        path: the run directory (absolute).
        storage_url: the Optuna storage (see module docstring).
        studies: board name -> Optuna study name (``<experiment>:<board>``), in config order.
    """

    path: Path
    storage_url: str
    studies: dict[str, str] = field(default_factory=dict)

    def trial_dir(self, board: str, number: int) -> Path:
        return self.path / "trials" / board / str(number)

    def final_dir(self, board: str, number: int) -> Path:
        return self.path / "final" / board / str(number)

    def export_dir(self, board: str, number: int) -> Path:
        return self.path / "exports" / board / str(number)


def study_name(experiment_name: str, board_name: str) -> str:
    return f"{experiment_name}:{board_name}"


def default_storage_url(run_dir: Path, workers: int) -> str:
    """SQLite in the run directory for one process, a journal file for several (Ray)."""
    if workers > 1:
        from mcunas.search.distributed import default_storage_url as journal_url

        return journal_url(run_dir)
    return f"sqlite:///{run_dir / 'study.db'}"


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without :data:`EXECUTION_KEYS`."""
    result = {}
    for section, value in config.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if (section, k) not in EXECUTION_KEYS}
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


def check_config(run_dir: Path, experiment: Any) -> None:
    """Raise RunDirError when ``run_dir/config.yaml`` holds a different experiment."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return
    try:
        stored = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise RunDirError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(stored, dict):
        raise RunDirError(f"{path}: expected a mapping")
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
    path = run_dir / "run.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir}: run.json is missing (not a mcunas run directory?)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path}: cannot read ({error})") from error
    try:
        info = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunDirError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(info, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return info


def prepare_run_dir(experiment: Any, run_dir: str | Path, board_names: list[str]) -> RunLayout:
    """Create or reopen ``run_dir`` for ``experiment``; write ``config.yaml`` and ``run.json``.

    Raises:
        RunDirError: ``run_dir`` holds a run of a different configuration.
    """
    path = Path(run_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    check_config(path, experiment)
    run_json = path / "run.json"
    info = read_run_json(path) if run_json.is_file() else {}
    storage_url = (
        experiment.search.storage
        or info.get("storage")
        or default_storage_url(path, experiment.search.workers)
    )
    studies = {board: study_name(experiment.name, board) for board in board_names}
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    info = {
        "mcunas_version": importlib.metadata.version("mcunas"),
        "storage": storage_url,
        "studies": studies,
        "objectives": list(experiment.objectives),
        "created": info.get("created", now),
        "updated": now,
    }
    atomic_write_text(path / "config.yaml", experiment.to_yaml())
    write_json(run_json, info)
    return RunLayout(path, storage_url, studies)
