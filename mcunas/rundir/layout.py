"""Where a search keeps its state: the paths of a run directory and the study names.

::

    RUN_DIR/
      config.yaml                the experiment as run (resolved)
      run.json                   mcunas version, storage URL, study per board, objectives, limits
      study.db | journal.log     the Optuna storage (see :mod:`mcunas.rundir.storage`)
      teacher/                   arch.json, weights.pt, metrics.json
      trials/<board>/<number>/   arch.json, weights.pt, metrics.json
      final/<board>/<number>/    weights.pt, metrics.json
      exports/<board>/<number>/  model.tflite, ..., validation.json
      report/                    report.html, pareto.csv, trials.csv, figures/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run.json"


def study_name(experiment_name: str, board_name: str) -> str:
    """The Optuna study of one board: ``<experiment>:<board>``."""
    return f"{experiment_name}:{board_name}"


@dataclass
class RunLayout:
    """Where a search keeps its state.

    Attributes:
        path: the run directory (absolute).
        storage_url: the Optuna storage (see :mod:`mcunas.rundir.storage`), usable: it may
            hold a password, so it is left out of the repr and must be redacted when shown.
        studies: board name -> Optuna study name (``<experiment>:<board>``), in config order.
    """

    path: Path
    storage_url: str = field(repr=False)
    studies: dict[str, str] = field(default_factory=dict)

    def trial_dir(self, board: str, number: int) -> Path:
        return self.path / "trials" / board / str(number)

    def final_dir(self, board: str, number: int) -> Path:
        return self.path / "final" / board / str(number)

    def export_dir(self, board: str, number: int) -> Path:
        return self.path / "exports" / board / str(number)

    @property
    def report_path(self) -> Path:
        """The default HTML report of the run."""
        return self.path / "report" / "report.html"
