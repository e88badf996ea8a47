"""Objectives and hard constraints of a search, from the config's names to Optuna's values.

Objectives (validated by :mod:`mcunas.config`): ``accuracy`` (validation accuracy 0..1,
maximized) and the estimator's ``latency_ms``, ``sram_bytes``, ``flash_bytes``, ``macs``
(minimized).

Constraints are the relative overruns of the board's limits
(:func:`mcunas.estimators.budget.overruns`: ``sram_bytes / limit - 1`` etc.), so a value > 0
means violated and values of different units are comparable (NSGA-II and TPE sum the positive
ones into a penalty). They are stored with ``Trial.set_constraint`` under the limit keys
(``sram``, ``flash``, ``latency``), where the constraint-aware samplers read them.
"""

from __future__ import annotations

from typing import Sequence

from mcunas.config import Experiment
from mcunas.errors import ConfigError
from mcunas.estimators import Board, Cost

# Worst value of a maximized objective (accuracy of a model that was never trained).
WORST_ACCURACY = 0.0


def objective_values(names: Sequence[str], accuracy: float, cost: Cost) -> list[float]:
    """Objective values of a candidate: ``accuracy`` plus fields of its estimator Cost."""
    return [float(accuracy) if name == "accuracy" else float(getattr(cost, name)) for name in names]


def infeasible_values(names: Sequence[str], cost: Cost) -> list[float]:
    """Values of a candidate that breaks a hard constraint and is never trained.

    Accuracy gets its worst value (0.0); cost objectives keep their estimates (finite, so that
    GP and CMA-ES models stay well defined). What marks the candidate infeasible for the
    samplers is its constraint values, which every value-using Optuna sampler reads.
    """
    return objective_values(names, WORST_ACCURACY, cost)


def check_board(experiment: Experiment, board: Board) -> None:
    """Refuse latency objectives or ceilings on a board without a latency model for the runtime."""
    from mcunas.estimators.latency import unavailable_reason

    uses_latency = "latency_ms" in experiment.objectives or experiment.constraints.max_latency_ms is not None
    reason = unavailable_reason(board, experiment.runtime) if uses_latency else None
    if reason is not None:
        raise ConfigError(
            f"{reason}; remove latency_ms from objectives and constraints.max_latency_ms, "
            "or choose another board or runtime"
        )
