"""Uniform random architectures without an Optuna study, for drawing thousands quickly.

:func:`uniform_archs` draws architectures with the distribution of Optuna's ``RandomSampler``
(each choice of a categorical parameter equally likely, an integer parameter uniform over its
range, parameters drawn in :meth:`StagedSpace.sample`'s order) from one seeded
:class:`random.Random`, for statistics over a space (``mcunas space optimize``). A study's
``ask()`` and its bookkeeping cost about as much as estimating the candidate; here a draw
costs well under a microsecond per parameter.

A choice among ``n`` is ``floor(random() * n)``, the pick of :func:`random.choices` (one call
per parameter, where ``randrange`` makes three). Draws made with ``randrange`` before
2026-12-02 are not repeated: a seed now gives other architectures than it did then, and the
same ones on every run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from mcunas.spaces.base import StagedSpace


class _UniformDraws:
    """The two ``suggest_*`` methods :meth:`StagedSpace.sample` calls, drawing uniformly."""

    def __init__(self, rng: random.Random):
        self._random = rng.random

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[int(self._random() * len(choices))]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return low + int(self._random() * (high - low + 1))


def uniform_archs(space: StagedSpace[Any], count: int, seed: int) -> Iterator[Any]:
    """``count`` architectures of ``space`` drawn uniformly; the same seed gives the same ones."""
    draws = _UniformDraws(random.Random(seed))
    for _ in range(count):
        yield space.sample(draws)  # type: ignore[arg-type]
