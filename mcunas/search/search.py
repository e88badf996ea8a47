"""``run_search``: the whole search of an experiment in one run directory.

Steps: load the boards and make each board's sampler and pruner (a bad setting fails before
anything is written), lock and prepare the run directory (a different config is refused), open
(or resume) each board's study ``<name>:<board>`` once, make the teacher once, run the trials
still missing from the budget, sequentially here or on Ray (:mod:`mcunas.search.dispatch`) when
Ray is used (``workers > 1`` or a Ray address); finally retrain and export the Pareto members.
Rerunning the same command resumes every step. Ctrl-C stops cleanly: the in-flight trial is
marked failed and retried on resume. The report is a stage of its own
(:func:`mcunas.report.write_report`; :func:`mcunas.run.run_experiment` runs both).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.config import Experiment
from mcunas.errors import RunDirError
from mcunas.estimators import Board, load_board
from mcunas.rundir.layout import RunLayout
from mcunas.rundir.runinfo import prepare_run_dir
from mcunas.rundir.storage import is_storage_unavailable, open_storage, repair_journal, storage_unavailable
from mcunas.search.context import DataCache, SearchContext, build_context
from mcunas.search.distill import ensure_teacher
from mcunas.search.finalize import FinalModel, finalize_board
from mcunas.search.lock import file_lock
from mcunas.search.progress import SearchProgress
from mcunas.search.resume import finished_trials, recover_interrupted
from mcunas.search.samplers import make_pruner, make_sampler

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger("mcunas.search")


@dataclass
class SearchResult:
    """What a search produced.

    Attributes:
        run_dir: the run directory.
        storage_url: the Optuna storage, usable (it may hold a password: redact it to show it).
        studies: board name -> study name.
        trials_run: board name -> trials run by this call (resumed runs count only new ones).
        trials_finished: board name -> COMPLETE + PRUNED trials in the study after this call.
        finals: board name -> retrained (and exported) Pareto members.
    """

    run_dir: Path
    storage_url: str = field(repr=False)
    studies: dict[str, str] = field(default_factory=dict)
    trials_run: dict[str, int] = field(default_factory=dict)
    trials_finished: dict[str, int] = field(default_factory=dict)
    finals: dict[str, list[FinalModel]] = field(default_factory=dict)


def with_overrides(experiment: Experiment, trials: int | None, workers: int | None, ray_address: str | None) -> Experiment:
    """The experiment with command-line overrides of ``search.trials/workers/ray_address``."""
    update = {k: v for k, v in (("trials", trials), ("workers", workers), ("ray_address", ray_address)) if v is not None}
    if not update:
        return experiment
    search = experiment.search.model_validate({**experiment.search.model_dump(), **update})
    return experiment.model_copy(update={"search": search})


def uses_ray(experiment: Experiment) -> bool:
    """Whether trials run on Ray (in several processes): ``workers > 1`` or a Ray address."""
    return experiment.search.workers > 1 or experiment.search.ray_address is not None


@dataclass(frozen=True)
class StudyFactory:
    """Opens a board's study with the experiment's sampler (seeded) and pruner.

    Picklable: the Ray workers open their studies with it (:class:`SearchEvaluator`).
    """

    experiment: Experiment
    layout: RunLayout

    def open(self, storage: Any, board: str, sampler_seed: int) -> optuna.Study:
        import optuna

        experiment = self.experiment
        sampler = make_sampler(experiment.search.sampler, seed=sampler_seed,
                               n_objectives=len(experiment.objectives), n_trials=experiment.search.trials)
        pruner = make_pruner(experiment.search.pruner, epochs=experiment.training.epochs,
                             objectives=list(experiment.objectives))
        return optuna.create_study(study_name=self.layout.studies[board], storage=storage, sampler=sampler,
                                   pruner=pruner, directions=experiment.directions(), load_if_exists=True)


def board_seeds(experiment: Experiment, boards: list[Board]) -> dict[str, int]:
    """Sampler seed of each board's study on the driver: the experiment seed + board index."""
    return {board.name: experiment.seed + index for index, board in enumerate(boards)}


# Contexts of this process, per (run dir, board): a Ray worker builds each once.
_CONTEXTS: dict[tuple[str, str], SearchContext] = {}


@dataclass(frozen=True)
class SearchEvaluator:
    """The per-trial work handed to :func:`mcunas.search.dispatch.run_trials_on_ray`
    (a ``TrialEvaluator``): picklable, it rebuilds its context once per worker process."""

    studies: StudyFactory

    def load_study(self, storage: Any, board: str, sampler_seed: int) -> optuna.Study:
        return self.studies.open(storage, board, sampler_seed)

    def evaluate(self, trial: optuna.Trial, board: str) -> list[float]:
        from mcunas.search.trial import run_trial

        experiment, layout = self.studies.experiment, self.studies.layout
        key = (str(layout.path), board)
        if key not in _CONTEXTS:
            board_object = next(b for b in map(load_board, experiment.boards) if b.name == board)
            _CONTEXTS[key] = build_context(experiment, layout, board_object, storage=trial.storage)
        return run_trial(trial, _CONTEXTS[key])


def run_board_trials(ctx: SearchContext, study: optuna.Study, n_trials: int,
                     progress: SearchProgress | None = None) -> int:
    """Run trials of one board's study in this process until ``n_trials`` are finished;
    return how many were run. ``progress`` is told of each finished trial."""
    from mcunas.search.trial import run_trial

    remaining = max(0, n_trials - finished_trials(study))
    callbacks = [] if progress is None else [lambda _, trial: progress.trial_finished(ctx.board_name, trial)]
    if remaining:
        logger.info("%s: %d of %d trials to run", study.study_name, remaining, n_trials)
        study.optimize(lambda trial: run_trial(trial, ctx), n_trials=remaining, gc_after_trial=False,
                       callbacks=callbacks)
    return remaining


def _run_on_ray(experiment: Experiment, factory: StudyFactory, studies: dict[str, optuna.Study],
                data: DataCache, progress: SearchProgress) -> dict[str, int]:
    """The hand-off to Ray: the teacher is made here once, the workers load it."""
    from mcunas.search.cluster import WorkerResources
    from mcunas.search.dispatch import run_trials_on_ray

    if experiment.distillation.enabled:
        ensure_teacher(experiment, factory.layout.path, data.splits())
    search = experiment.search
    outcome = run_trials_on_ray(
        SearchEvaluator(factory), factory.layout.storage_url, studies, search.trials,
        WorkerResources(search.workers, search.cpus_per_worker, search.gpus_per_worker),
        seed=experiment.seed, run_dir=factory.layout.path, ray_address=search.ray_address,
        storage_retry_s=search.storage_retry_s, on_finished=progress.trial_finished, quiet_workers=progress.live,
    )
    return {board: len(numbers) for board, numbers in outcome.finished.items()}


def run_search(
    experiment: Experiment,
    run_dir: str | Path,
    trials: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    *,
    finalize: bool = True,
    progress: SearchProgress | None = None,
) -> SearchResult:
    """Run (or resume) the search of ``experiment`` in ``run_dir``.

    Args:
        experiment: a validated :class:`mcunas.config.Experiment`.
        run_dir: the run directory (created if needed).
        trials, workers, ray_address: override ``search.trials/workers/ray_address``.
        finalize: retrain and export the Pareto members after the trials.
        progress: the per-board progress lines (default: plain log records).

    Raises:
        RunDirError: ``run_dir`` holds another config, or another search is running in it.
        ConfigError: a sampler or pruner the experiment cannot use (before anything is written);
            SQLite storage for trials on Ray; a storage URL naming an unset variable.
        StorageError: the database server became unreachable (after ``search.storage_retry_s``
            on Ray); rerunning the same command resumes.
    """
    import optuna

    from mcunas.search.train import configure_threads

    experiment = with_overrides(experiment, trials, workers, ray_address)
    boards = [load_board(entry) for entry in experiment.boards]
    # Fail on a bad sampler/pruner choice before the run directory is touched.
    make_sampler(experiment.search.sampler, seed=experiment.seed, n_objectives=len(experiment.objectives),
                 n_trials=experiment.search.trials)
    make_pruner(experiment.search.pruner, epochs=experiment.training.epochs, objectives=list(experiment.objectives))
    logger.info("torch trains with %d thread(s) in this process", configure_threads())
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial comes from mcunas
    run_dir = Path(run_dir).resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a directory")
    with file_lock(run_dir / ".lock", blocking=False) as held:
        if not held:
            raise RunDirError(f"{run_dir}: another mcunas search is running in this run directory")
        layout = prepare_run_dir(experiment, run_dir, boards, several_processes=uses_ray(experiment))
        repair_journal(layout.storage_url)
        storage = open_storage(layout.storage_url)
        factory = StudyFactory(experiment, layout)
        seeds = board_seeds(experiment, boards)
        studies = {board.name: factory.open(storage, board.name, seeds[board.name]) for board in boards}
        progress = progress or SearchProgress(live=False)
        for name, study in studies.items():
            recover_interrupted(study, functools.partial(layout.trial_dir, name))
            progress.begin(name, experiment.search.trials, experiment.objectives, experiment.directions(),
                           study.get_trials(deepcopy=False))
        result = SearchResult(layout.path, layout.storage_url, dict(layout.studies))
        data = DataCache(experiment)
        contexts: dict[str, SearchContext] = {}

        def context(board: Board) -> SearchContext:
            if board.name not in contexts:
                contexts[board.name] = build_context(experiment, layout, board, data=data, storage=storage)
            return contexts[board.name]

        try:
            try:
                if uses_ray(experiment):
                    result.trials_run = _run_on_ray(experiment, factory, studies, data, progress)
                else:
                    for board in boards:
                        result.trials_run[board.name] = run_board_trials(context(board), studies[board.name],
                                                                         experiment.search.trials, progress)
            except Exception as error:
                if not is_storage_unavailable(error):
                    raise
                raise storage_unavailable(layout.storage_url, "became unreachable during a trial", error) from None
            finally:
                progress.close()
            for board in boards:
                result.trials_finished[board.name] = finished_trials(studies[board.name])
                if finalize:
                    result.finals[board.name] = finalize_board(context(board), studies[board.name])
        except KeyboardInterrupt:
            logger.warning("interrupted: finished trials and models are kept, a running trial was marked failed and "
                           "will be retried; run the same command again to resume")
            raise
    return result
