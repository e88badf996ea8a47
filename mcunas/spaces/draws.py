"""Uniform random architectures without an Optuna study, for drawing thousands quickly.

:func:`uniform_archs` draws architectures with the distribution of Optuna's ``RandomSampler``
(each choice of a categorical parameter equally likely, an integer parameter uniform over its
range, parameters drawn in :meth:`StagedSpace.sample`'s order) from one seeded
:class:`random.Random`, for statistics over a space (``mcunas space optimize``). A study's
``ask()`` and its bookkeeping cost about as much as estimating the candidate; here a draw
costs a few microseconds per parameter.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from mcunas.spaces.base import StagedSpace


class _UniformDraws:
    """The two ``suggest_*`` methods :meth:`StagedSpace.sample` calls, drawing uniformly."""

    def __init__(self, rng: random.Random):
        self._rng = rng

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[self._rng.randrange(len(choices))]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self._rng.randint(low, high)


def uniform_archs(space: StagedSpace[Any], count: int, seed: int) -> Iterator[Any]:
    """``count`` architectures of ``space`` drawn uniformly; the same seed gives the same ones."""
    draws = _UniformDraws(random.Random(seed))
    for _ in range(count):
        yield space.sample(draws)  # type: ignore[arg-type]
