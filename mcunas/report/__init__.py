"""The Pareto report: one self-contained HTML page, CSV tables and paper figures from run directories.

``write_report(run_dirs, out_path)`` reads each run directory (``run.json``, its Optuna
storage, ``config.yaml``, ``final/*/*/metrics.json``, ``exports/*/*/validation.json``) and
writes ``out_path`` with ``pareto.csv``, ``trials.csv`` and ``figures/`` beside it.

``write_report`` is imported on first use, so that ``mcunas.report.command`` (loaded by
``mcunas --help``) does not pull in matplotlib and Optuna.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from mcunas.report.write import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
