"""What a trial needs, built once per process: the space, the board, data, the teacher.

The search driver builds one :class:`SearchContext` per board; a Ray worker builds its own
with :func:`build_context` from the experiment and run directory (nothing heavy is pickled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcunas.config import Experiment
from mcunas.data import DatasetSplits
from mcunas.estimators import Board
from mcunas.estimators.budget import Limit, limits
from mcunas.rundir.layout import RunLayout
from mcunas.rundir.storage import open_storage
from mcunas.search.objectives import check_board
from mcunas.search.train import TrainData
from mcunas.spaces import Space

if TYPE_CHECKING:
    import optuna


def make_space(experiment: Experiment, input_channels: int, num_classes: int) -> Space:
    """The experiment's space, with the dataset's channels and classes.

    Unless the space options list ``resolutions``, the only candidate resolution is
    ``dataset.resolution`` (the resolution the data is prepared at).
    """
    from mcunas.spaces import get_space

    options = dict(experiment.space.options)
    options.setdefault("resolutions", [experiment.dataset.resolution])
    options.update(input_channels=input_channels, num_classes=num_classes)
    return get_space(experiment.space.name, **options)


@dataclass
class DataCache:
    """Dataset splits per input resolution, loaded on first use (``dataset.resolution`` first)."""

    experiment: Experiment
    _splits: dict[int, DatasetSplits] = field(default_factory=dict)
    _train_data: dict[int, TrainData] = field(default_factory=dict)

    def splits(self, resolution: int | None = None) -> DatasetSplits:
        """:class:`mcunas.data.DatasetSplits` at ``resolution`` (default: the dataset's)."""
        from mcunas.data import load_dataset

        dataset = self.experiment.dataset
        resolution = resolution or dataset.resolution
        if resolution not in self._splits:
            config = dataset if resolution == dataset.resolution else dataset.model_copy(update={"resolution": resolution})
            self._splits[resolution] = load_dataset(config, self.experiment.seed)
        return self._splits[resolution]

    def train_data(self, resolution: int | None = None) -> TrainData:
        resolution = resolution or self.experiment.dataset.resolution
        if resolution not in self._train_data:
            self._train_data[resolution] = TrainData.from_splits(self.splits(resolution), self.experiment.dataset.name)
        return self._train_data[resolution]


@dataclass
class SearchContext:
    """Everything :func:`mcunas.search.trial.run_trial` reads.

    Attributes:
        experiment: the validated experiment.
        layout: the run directory layout (storage URL, study names).
        board: the estimator Board of this study.
        space: the search space (dataset channels and classes filled in).
        data: dataset splits per resolution.
        storage: the Optuna storage (for the accuracy cache across studies).
        teacher: the distillation teacher in eval mode, or None when distillation is off.
        limits: the board's budgets and the latency ceiling (:func:`mcunas.estimators.budget.limits`).
    """

    experiment: Experiment
    layout: RunLayout
    board: Board
    space: Space
    data: DataCache
    storage: optuna.storages.BaseStorage
    teacher: Any = None
    limits: tuple[Limit, ...] = ()

    @property
    def board_name(self) -> str:
        return self.board.name

    @property
    def study_name(self) -> str:
        return self.layout.studies[self.board.name]


def build_context(
    experiment: Experiment,
    layout: RunLayout,
    board: Board,
    *,
    data: DataCache | None = None,
    storage: optuna.storages.BaseStorage | None = None,
    teacher: Any = None,
) -> SearchContext:
    """A context for ``board`` (one of the experiment's boards, a study of ``layout.studies``).

    ``teacher`` defaults to :func:`mcunas.search.distill.ensure_teacher` when distillation is
    enabled (trained once per run directory, loaded afterwards).
    """
    data = data or DataCache(experiment)
    check_board(experiment, board)
    splits = data.splits()
    space = make_space(experiment, splits.input_channels, splits.num_classes)
    if teacher is None and experiment.distillation.enabled:
        from mcunas.search.distill import ensure_teacher

        teacher = ensure_teacher(experiment, layout.path, splits)
    return SearchContext(experiment, layout, board, space, data, storage or open_storage(layout.storage_url), teacher,
                         limits(board, **experiment.constraints.budget_arguments()))

