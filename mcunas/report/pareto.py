"""Pareto sets of trials: which feasible candidates no other feasible candidate beats."""

from __future__ import annotations

from collections.abc import Sequence

from mcunas.config import OBJECTIVE_DIRECTIONS
from mcunas.rundir.pareto import pareto_indices
from mcunas.rundir.records import TrialRecord


def candidates(trials: Sequence[TrialRecord], metrics: Sequence[str]) -> list[TrialRecord]:
    """Completed feasible trials with a value for every metric, one per architecture (the first)."""
    unique: dict[str, TrialRecord] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.state == "COMPLETE" and t.feasible and all(t.metric(m) is not None for m in metrics):
            unique.setdefault(t.arch_key, t)
    return list(unique.values())


def pareto_front(trials: Sequence[TrialRecord], metrics: Sequence[str]) -> list[TrialRecord]:
    """The non-dominated trials under ``metrics``, by trial number.

    Directions are the objectives' (:data:`mcunas.config.OBJECTIVE_DIRECTIONS`: accuracy
    maximized, costs minimized). Only completed feasible trials compete: infeasible ones carry
    worst-case values or do not fit the board. An architecture sampled twice counts once, as
    in the search's finalization; different architectures with equal values are all kept.
    """
    pool = candidates(trials, metrics)
    points = [[t.metric(m) for m in metrics] for t in pool]
    maximize = [OBJECTIVE_DIRECTIONS[m] == "maximize" for m in metrics]
    return [pool[i] for i in pareto_indices(points, maximize)]  # type: ignore[arg-type]
