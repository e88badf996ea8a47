"""Pareto selection: which points no other point beats, for the search and the report alike."""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """True when ``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, is_max in zip(a, b, maximize):
        if is_max:
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def pareto_indices(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points (duplicates of a front point are all kept)."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, maximize) for j, q in enumerate(points) if j != i)
    ]
