"""The run-directory format: the hand-over between search, export and report.

Below both the search (which writes a run directory) and the report (which reads it):

* :mod:`.layout` - paths (:class:`RunLayout`) and study names;
* :mod:`.runinfo` - ``config.yaml`` and ``run.json``: :func:`prepare_run_dir`,
  :func:`read_run_json`, the config check of a resumed run;
* :mod:`.storage` - the Optuna storage: :func:`open_storage`, :func:`open_run_storage`;
* :mod:`.records` - :class:`TrialRecord` values read back from a run's studies and files;
* :mod:`.pareto` - Pareto selection shared by finalization and the report.
"""

from mcunas.rundir.layout import RunLayout, study_name
from mcunas.rundir.pareto import dominates, pareto_indices

__all__ = ["RunLayout", "dominates", "pareto_indices", "study_name"]
