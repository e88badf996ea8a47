"""Hardware-aware search: Optuna studies per board, constraints before training, training with
distillation, resume, finalization (retrain, export, report).

Public API: :func:`run_search` and :class:`SearchResult`; the pieces parallel workers use:
:func:`build_context`, :func:`run_trial`, :class:`StudyFactory`, :func:`ensure_teacher`.
Attributes are imported on first use, so ``mcunas.search.command`` stays light (no torch or
optuna at ``mcunas --help``).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SearchContext": "mcunas.search.context",
    "build_context": "mcunas.search.context",
    "ensure_teacher": "mcunas.search.distill",
    "SearchResult": "mcunas.search.search",
    "StudyFactory": "mcunas.search.search",
    "run_search": "mcunas.search.search",
    "run_trial": "mcunas.search.trial",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mcunas.search' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
