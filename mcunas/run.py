"""``run_experiment``: the whole pipeline of an experiment - search, finalization, report.

The stages stay usable alone (:func:`mcunas.search.run_search`,
:func:`mcunas.report.write_report`); this is the one call that chains them, as
``mcunas search`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcunas.config import Experiment
from mcunas.search.progress import SearchProgress
from mcunas.search.search import SearchResult, run_search


@dataclass
class ExperimentResult:
    """A search's result and the report written after it (None when not written)."""

    search: SearchResult
    report: Path | None


def run_experiment(
    experiment: Experiment,
    run_dir: str | Path,
    trials: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    *,
    finalize: bool = True,
    progress: SearchProgress | None = None,
) -> ExperimentResult:
    """Run (or resume) the search of ``experiment`` in ``run_dir`` (see :func:`run_search` for the
    arguments), then, when ``finalize`` and ``report.enabled``, write ``RUN_DIR/report/report.html``."""
    result = run_search(experiment, run_dir, trials, workers, ray_address, finalize=finalize, progress=progress)
    report = None
    if finalize and experiment.report.enabled:
        from mcunas.report import write_report
        from mcunas.rundir.layout import RunLayout

        layout = RunLayout(result.run_dir, result.storage_url, result.studies)
        # The storage URL with its password: run.json records it redacted.
        report = write_report([layout.path], layout.report_path, storage_urls={layout.path: layout.storage_url})
    return ExperimentResult(result, report)
