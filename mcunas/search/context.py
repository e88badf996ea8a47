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


def make_space(experiment: Experiment, splits: DatasetSplits) -> Space:
    """The experiment's space for the dataset: its channels, classes and input size.

    The input is the data's (:meth:`mcunas.spaces.Space.options_for_input`): the square spaces
    draw from ``resolutions`` (default: the dataset's side), dscnn takes the front end's
    frames x features as ``input_size``.
    """
    from mcunas.spaces import space_for_input

    options = {**experiment.space.options, "input_channels": splits.input_channels, "num_classes": splits.num_classes}
    return space_for_input(experiment.space.name, options, splits.input_size)


@dataclass
class DataCache:
    """Dataset splits per input size (height, width), loaded on first use; the dataset's own size
    first. Audio data has one size (its front end's); images are resized to any square size."""

    experiment: Experiment
    _splits: dict[tuple[int, int], DatasetSplits] = field(default_factory=dict)
    _train_data: dict[tuple[int, int], TrainData] = field(default_factory=dict)

    def _size(self, input_size: tuple[int, int] | None) -> tuple[int, int]:
        return self.experiment.dataset.input_size if input_size is None else (int(input_size[0]), int(input_size[1]))

    def splits(self, input_size: tuple[int, int] | None = None) -> DatasetSplits:
        """:class:`mcunas.data.DatasetSplits` of samples of ``input_size`` (an Arch's
        ``input_size``; default: the dataset's)."""
        from mcunas.data import load_dataset_at

        size = self._size(input_size)
        if size not in self._splits:
            self._splits[size] = load_dataset_at(self.experiment.dataset, size, self.experiment.seed)
        return self._splits[size]

    def train_data(self, input_size: tuple[int, int] | None = None) -> TrainData:
        size = self._size(input_size)
        if size not in self._train_data:
            self._train_data[size] = TrainData.from_splits(self.splits(size), self.experiment.dataset.name)
        return self._train_data[size]


@dataclass
class SearchContext:
    """Everything :func:`mcunas.search.trial.run_trial` reads.

    Attributes:
        experiment: the validated experiment.
        layout: the run directory layout (storage URL, study names).
        board: the estimator Board of this study.
        space: the search space (dataset channels and classes filled in).
        data: dataset splits per input size.
        storage: the Optuna storage (for the accuracy cache across studies).
        teacher: the distillation teacher in eval mode, or None when distillation is off.
        limits: the board's budgets and the latency ceiling (:func:`mcunas.estimators.budget.limits`).

    ``experiment.dataset.front_end`` (audio) is costed with every candidate (its flash and RAM).
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
    space = make_space(experiment, splits)
    if teacher is None and experiment.distillation.enabled:
        from mcunas.search.distill import ensure_teacher

        teacher = ensure_teacher(experiment, layout.path, splits)
    return SearchContext(experiment, layout, board, space, data, storage or open_storage(layout.storage_url), teacher,
                         limits(board, **experiment.constraints.budget_arguments()))

