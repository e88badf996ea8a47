"""``run_search``: the whole search of an experiment in one run directory.

Steps: lock and prepare the run directory (a different config is refused), load the data, make
the teacher once, then per board open (or resume) the study ``<name>:<board>`` and run the
trials still missing from the budget, sequentially here or on Ray
(:mod:`mcunas.search.distributed`) when ``workers > 1`` or a Ray address is given; finally
retrain and export the Pareto members and write the report. Rerunning the same command resumes
every step. Ctrl-C stops cleanly: the in-flight trial is marked failed and retried on resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcunas.errors import RunDirError
from mcunas.search.context import DataCache, SearchContext, board_names, build_context
from mcunas.search.distill import ensure_teacher
from mcunas.search.finalize import FinalModel, finalize_board
from mcunas.search.lock import file_lock
from mcunas.search.resume import finished_trials, recover_interrupted
from mcunas.search.distributed import open_storage
from mcunas.search.rundir import RunLayout, prepare_run_dir
from mcunas.search.samplers import check_search_settings, make_pruner, make_sampler

logger = logging.getLogger("mcunas.search")


@dataclass
class SearchResult:
    """What a search produced.

    Attributes:
        run_dir: the run directory.
        storage_url: the Optuna storage.
        studies: board name -> study name.
        trials_run: board name -> trials run by this call (resumed runs count only new ones).
        trials_finished: board name -> COMPLETE + PRUNED trials in the study after this call.
        finals: board name -> retrained (and exported) Pareto members.
        report: path of report.html, or None when not written.
    """

    run_dir: Path
    storage_url: str
    studies: dict[str, str]
    trials_run: dict[str, int] = field(default_factory=dict)
    trials_finished: dict[str, int] = field(default_factory=dict)
    finals: dict[str, list[FinalModel]] = field(default_factory=dict)
    report: Path | None = None


def with_overrides(experiment: Any, trials: int | None, workers: int | None, ray_address: str | None) -> Any:
    """The experiment with command-line overrides of ``search.trials/workers/ray_address``."""
    update = {k: v for k, v in (("trials", trials), ("workers", workers), ("ray_address", ray_address)) if v is not None}
    if not update:
        return experiment
    search = experiment.search.model_validate({**experiment.search.model_dump(), **update})
    return experiment.model_copy(update={"search": search})


def open_study(experiment: Any, layout: RunLayout, board: str, storage: Any, sampler_seed: int) -> Any:
    """Create or load the board's study with a sampler seeded by ``sampler_seed`` and the pruner."""
    import optuna

    sampler = make_sampler(experiment.search.sampler, seed=sampler_seed,
                           n_objectives=len(experiment.objectives), n_trials=experiment.search.trials)
    pruner = make_pruner(experiment.search.pruner, epochs=experiment.training.epochs,
                         objectives=list(experiment.objectives))
    return optuna.create_study(study_name=layout.studies[board], storage=storage, sampler=sampler, pruner=pruner,
                               directions=experiment.directions(), load_if_exists=True)


def board_seed(experiment: Any, layout: RunLayout, board: str) -> int:
    """Sampler seed of a board's study in a sequential run: the experiment seed + board index."""
    return experiment.seed + list(layout.studies).index(board)


# Contexts of this process, per (run dir, board): a Ray worker builds each once.
_CONTEXTS: dict[tuple[str, str], SearchContext] = {}


@dataclass(frozen=True)
class SearchEvaluator:
    """The per-trial work handed to :func:`mcunas.search.distributed.run_trials_on_ray`
    (a ``TrialEvaluator``): picklable, it rebuilds its context once per worker process."""

    experiment: Any
    layout: RunLayout

    def load_study(self, storage: Any, board: str, sampler_seed: int) -> Any:
        return open_study(self.experiment, self.layout, board, storage, sampler_seed)

    def evaluate(self, trial: Any, board: str) -> list[float]:
        from mcunas.search.trial import run_trial

        key = (str(self.layout.path), board)
        if key not in _CONTEXTS:
            _CONTEXTS[key] = build_context(self.experiment, self.layout, board, storage=trial.storage)
        return run_trial(trial, _CONTEXTS[key])


def uses_ray(experiment: Any) -> bool:
    return experiment.search.workers > 1 or experiment.search.ray_address is not None


def run_board_trials(ctx: SearchContext, study: Any, n_trials: int) -> int:
    """Run trials of one board's study in this process until ``n_trials`` are finished;
    return how many were run."""
    from mcunas.search.trial import run_trial

    remaining = max(0, n_trials - finished_trials(study))
    if remaining:
        logger.info("%s: %d of %d trials to run", study.study_name, remaining, n_trials)
        study.optimize(lambda trial: run_trial(trial, ctx), n_trials=remaining, gc_after_trial=False)
    return remaining


def _run_on_ray(experiment: Any, layout: RunLayout, data: DataCache) -> dict[str, int]:
    """The hand-off to Ray: the teacher is made here once, the workers load it."""
    from mcunas.search.distributed import WorkerResources, run_trials_on_ray

    if experiment.distillation.enabled:
        ensure_teacher(experiment, layout.path, data.splits())
    search = experiment.search
    outcome = run_trials_on_ray(
        SearchEvaluator(experiment, layout), layout.storage_url, list(layout.studies), search.trials,
        WorkerResources(search.workers, search.cpus_per_worker, search.gpus_per_worker),
        seed=experiment.seed, run_dir=layout.path, ray_address=search.ray_address,
    )
    return {board: len(numbers) for board, numbers in outcome.finished.items()}


def _run_trials(experiment: Any, layout: RunLayout, storage: Any, data: DataCache, result: SearchResult) -> None:
    """The trial phase: on Ray, or sequentially board after board in this process."""
    if uses_ray(experiment):
        result.trials_run = _run_on_ray(experiment, layout, data)
        return
    for board in layout.studies:
        study = open_study(experiment, layout, board, storage, board_seed(experiment, layout, board))
        recover_interrupted(study, storage)
        ctx = build_context(experiment, layout, board, data=data, storage=storage)
        result.trials_run[board] = run_board_trials(ctx, study, experiment.search.trials)


def run_search(
    experiment: Any,
    run_dir: str | Path,
    trials: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    *,
    finalize: bool = True,
) -> SearchResult:
    """Run (or resume) the search of ``experiment`` in ``run_dir``.

    Args:
        experiment: a validated :class:`mcunas.config.Experiment`.
        run_dir: the run directory (created if needed).
        trials, workers, ray_address: override ``search.trials/workers/ray_address``.
        finalize: retrain/export the Pareto members and write the report after the trials.

    Raises:
        RunDirError: ``run_dir`` holds another config, or another search is running in it.
    """
    import optuna

    from mcunas.search.train import configure_threads

    experiment = with_overrides(experiment, trials, workers, ray_address)
    check_search_settings(experiment)
    logger.info("torch trains with %d thread(s) in this process", configure_threads())
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial comes from mcunas
    run_dir = Path(run_dir).resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a directory")
    with file_lock(run_dir / ".lock", blocking=False) as held:
        if not held:
            raise RunDirError(f"{run_dir}: another mcunas search is running in this run directory")
        layout = prepare_run_dir(experiment, run_dir, board_names(experiment))
        storage = open_storage(layout.storage_url)
        result = SearchResult(layout.path, layout.storage_url, dict(layout.studies))
        data = DataCache(experiment)
        try:
            _run_trials(experiment, layout, storage, data, result)
            for board in layout.studies:
                study = open_study(experiment, layout, board, storage, board_seed(experiment, layout, board))
                result.trials_finished[board] = finished_trials(study)
                if finalize:
                    ctx = build_context(experiment, layout, board, data=data, storage=storage)
                    result.finals[board] = finalize_board(ctx, study)
            if finalize and experiment.report.enabled:
                from mcunas.report import write_report

                result.report = write_report([layout.path], layout.path / "report" / "report.html")
        except KeyboardInterrupt:
            logger.warning("interrupted: finished trials and models are kept, a running trial was marked failed and "
                           "will be retried; run the same command again to resume")
            raise
    return result
