"""Distributed search: Optuna trials evaluated as Ray tasks that share one Optuna storage.

The driver (the process that calls :func:`run_trials_on_ray`) owns the studies, one per board.
It asks every new trial itself, so it always knows which trial each task runs; submits one Ray
task per trial, with at most ``workers`` tasks in flight so that the sampler sees recent results;
and tells each result. A worker opens the storage itself from its URL or journal path, rebuilds
the trial from its number (``BaseStorage.get_trial_id_from_study_id_trial_number``) and runs the search's per-trial evaluation
(sample the architecture through the study's sampler, estimate, train, write
``trials/<board>/<number>/``, set the user attributes), exactly as in a single-process run. The
driver is the only process that finishes trials (``study.tell``), so no trial is told twice.

Fault tolerance. Tasks run with ``max_retries=0``: when a worker process dies mid-trial (killed,
out of memory, its node lost), Ray reports it to the driver, which marks that trial FAIL (user
attribute ``failure``), removes its half-written ``trials/<board>/<number>/`` and enqueues the
parameters it had sampled as a new trial (user attributes ``retry_of``, ``attempt``), up to
:data:`MAX_ATTEMPTS` attempts per candidate. The run goes on until each board has the requested
number of finished (COMPLETE or PRUNED) trials. An exception raised by the evaluation itself is
not retried: the trial is marked FAIL, the other running trials are cancelled and marked FAIL, and
the exception propagates, as ``study.optimize`` does. Trials left RUNNING by a driver that was
killed are failed and their parameters enqueued again when the next run starts
(:func:`mcunas.search.resume.recover_interrupted`; one driver per run directory).

Storage: each worker opens the storage itself from its URL or journal path
(:func:`mcunas.rundir.storage.open_storage`); the cluster: :mod:`mcunas.search.cluster`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from mcunas.errors import McunasError
from mcunas.rundir.storage import open_storage
from mcunas.search.cluster import WorkerResources, check_shared_run_dir, ray_cluster

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)

# Attempts per candidate (parameter set) whose worker died, the first one included.
MAX_ATTEMPTS = 3

# Ray errors that mean "the worker process or its node went away", not "the trial raised".
_WORKER_LOSS_ERRORS = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ObjectLostError")

class TrialEvaluator(Protocol):
    """The search's per-trial work, as the workers run it. Must be picklable (sent to every task).

    ``load_study`` opens (or creates) a board's study on ``storage`` with the sampler and pruner
    of the experiment, the sampler seeded with ``sampler_seed``. ``evaluate`` runs one trial (samples
    the architecture through ``trial``, writes ``trials/<board>/<trial.number>/``, sets the user
    attributes) and returns its objective values; it raises ``optuna.TrialPruned`` when pruned.
    """

    def load_study(self, storage: Any, board: str, sampler_seed: int) -> optuna.Study: ...

    def evaluate(self, trial: optuna.Trial, board: str) -> float | Sequence[float]: ...


@dataclass(frozen=True)
class TrialTask:
    """Everything one Ray task needs to evaluate one trial (sent to the worker)."""

    storage_url: str
    board: str
    trial_number: int
    sampler_seed: int
    torch_threads: int
    evaluator: TrialEvaluator
    log_level: int  # of the driver's ``mcunas`` logger, so workers log what the driver would
    optuna_verbosity: int


@dataclass(frozen=True)
class TrialOutcome:
    """What a task returns: the trial's final state (``COMPLETE`` or ``PRUNED``) and values."""

    state: str
    values: tuple[float, ...] | None


@dataclass
class DistributedResult:
    """Summary of one distributed run of trials.

    Attributes:
        finished: board -> numbers of the trials finished (COMPLETE or PRUNED) in this run.
        failed: board -> numbers of the trials marked FAIL in this run (their worker died, their
            evaluation raised, or they were cancelled when the run stopped).
        retried: board -> numbers of the failed trials whose parameters were enqueued again (the
            new trial carries the user attributes ``retry_of`` and ``attempt``).
        worker_deaths: tasks lost because their worker process or node died.
        wall_seconds: time from the first submission to the last result, seconds.
    """

    finished: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, list[int]] = field(default_factory=dict)
    retried: dict[str, list[int]] = field(default_factory=dict)
    worker_deaths: int = 0
    wall_seconds: float = 0.0


@lru_cache(maxsize=4)
def _worker_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL per worker process (a journal is replayed incrementally)."""
    return open_storage(url)


# ----------------------------------------------------------------------------- worker side


def evaluate_trial_task(task: TrialTask) -> TrialOutcome:
    """Run one trial in a worker: rebuild the trial the driver asked, evaluate it, return values.

    The trial's final state is left to the driver; a pruned trial is returned as ``PRUNED``.
    """
    import optuna
    import torch

    torch.set_num_threads(task.torch_threads)
    _configure_worker_logging(task.log_level)
    optuna.logging.set_verbosity(task.optuna_verbosity)
    storage = _worker_storage(task.storage_url)
    study = task.evaluator.load_study(storage, task.board, task.sampler_seed)
    study_id = storage.get_study_id_from_name(study.study_name)
    trial = optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, task.trial_number))
    try:
        values = task.evaluator.evaluate(trial, task.board)
    except optuna.TrialPruned:
        return TrialOutcome("PRUNED", None)
    if isinstance(values, (int, float)):
        values = (values,)
    return TrialOutcome("COMPLETE", tuple(float(v) for v in values))


def _configure_worker_logging(level: int) -> None:
    """Log to stderr at the driver's level; Ray forwards a worker's output to the driver."""
    logging.getLogger("mcunas").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)


def worker_sampler_seed(seed: int, trial_number: int) -> int:
    """Seed of the sampler that a worker uses for trial ``trial_number``.

    Samplers with the same seed in several workers would propose the same candidates; a seed
    per trial number keeps them apart and keeps a rerun reproducible trial by trial.
    """
    return (seed * 1_000_003 + trial_number + 1) % 2**32


# ----------------------------------------------------------------------------- driver side


@dataclass
class _Running:
    """A submitted trial, as the driver tracks it."""

    study: optuna.Study
    board: str
    trial: optuna.Trial
    attempt: int


def run_trials_on_ray(
    evaluator: TrialEvaluator,
    storage_url: str,
    studies: dict[str, optuna.Study],
    trials: int,
    resources: WorkerResources,
    *,
    seed: int,
    run_dir: str | os.PathLike[str],
    ray_address: str | None = None,
    max_worker_deaths: int | None = None,
) -> DistributedResult:
    """Run trials on Ray until every board's study holds ``trials`` finished trials.

    Trials already finished count (a resumed run only adds the missing ones); trials left
    RUNNING by an earlier driver must have been recovered
    (:func:`mcunas.search.resume.recover_interrupted`). Call it from the run's driver process
    only.

    Args:
        evaluator: the search's per-trial work (picklable), see :class:`TrialEvaluator`.
        storage_url: journal file path or SQLAlchemy URL of the studies' storage, which each
            worker opens.
        studies: board name -> the driver's study of that board (in that storage).
        trials: finished (COMPLETE or PRUNED) trials wanted per board.
        resources: workers and what each reserves.
        seed: the experiment seed; board ``i``'s study samples with ``seed + i`` on the driver
            (as in a sequential run), and with :func:`worker_sampler_seed` of that in the workers.
        run_dir: the run directory (failed trials' folders ``trials/<board>/<n>`` are removed
            there; a local cluster's temporary files go under it).
        ray_address: None for a local cluster, ``"auto"`` or ``host:port`` to join one.
        max_worker_deaths: give up after this many lost tasks (default: ``max(3, trials)``).

    Raises:
        McunasError: workers died more than ``max_worker_deaths`` times.
        Exception: whatever the evaluation raised in a worker (the trial is marked FAIL).
    """
    from mcunas.search.resume import finished_trials

    board_seeds = {board: seed + index for index, board in enumerate(studies)}
    result = DistributedResult(
        finished={board: [] for board in studies},
        failed={board: [] for board in studies},
        retried={board: [] for board in studies},
    )
    done = {board: finished_trials(study) for board, study in studies.items()}
    if all(done[board] >= trials for board in studies):
        return result
    with ray_cluster(ray_address, resources, run_dir):
        if ray_address is not None:
            check_shared_run_dir(Path(run_dir).resolve())
        _dispatch(
            evaluator,
            storage_url,
            studies,
            done,
            trials,
            resources,
            board_seeds=board_seeds,
            run_dir=Path(run_dir),
            result=result,
            max_worker_deaths=max(3, trials) if max_worker_deaths is None else max_worker_deaths,
        )
    return result


def _dispatch(
    evaluator: TrialEvaluator,
    storage_url: str,
    studies: dict[str, optuna.Study],
    done: dict[str, int],
    trials: int,
    resources: WorkerResources,
    *,
    board_seeds: dict[str, int],
    run_dir: Path,
    result: DistributedResult,
    max_worker_deaths: int,
) -> None:
    """Keep ``resources.workers`` trials in flight until every board has ``trials`` finished."""
    import optuna
    import ray
    from optuna.trial import TrialState

    remote = ray.remote(evaluate_trial_task).options(
        num_cpus=resources.cpus_per_worker, num_gpus=resources.gpus_per_worker, max_retries=0
    )
    running: dict[Any, _Running] = {}

    def submit_next() -> bool:
        in_flight = {board: 0 for board in studies}
        for item in running.values():
            in_flight[item.board] += 1
        open_boards = [b for b in studies if done[b] + in_flight[b] < trials]
        if not open_boards:
            return False
        board = min(open_boards, key=lambda b: done[b] + in_flight[b])
        study = studies[board]
        trial = study.ask()
        task = TrialTask(
            storage_url,
            board,
            trial.number,
            worker_sampler_seed(board_seeds[board], trial.number),
            resources.torch_threads,
            evaluator,
            logging.getLogger("mcunas").getEffectiveLevel(),
            optuna.logging.get_verbosity(),
        )
        running[remote.remote(task)] = _Running(study, board, trial, int(trial.user_attrs.get("attempt", 1)))
        return True

    start = time.perf_counter()
    try:
        while True:
            while len(running) < resources.workers and submit_next():
                pass
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                item = running.pop(ref)
                try:
                    outcome: TrialOutcome = ray.get(ref)
                except ray.exceptions.RayError as error:
                    if not _is_worker_loss(error):
                        _fail(item, run_dir, result, f"error: {_describe(error)}")
                        raise _cause(error) from error
                    result.worker_deaths += 1
                    _fail(item, run_dir, result, f"worker died: {_describe(error)}")
                    _retry(item, result)
                    if result.worker_deaths > max_worker_deaths:
                        raise McunasError(
                            f"search: Ray workers died {result.worker_deaths} times (limit {max_worker_deaths}); "
                            f"last: {_describe(error)}. See the worker logs under the Ray temp dir."
                        ) from error
                    continue
                item.study.tell(item.trial.number, outcome.values, state=TrialState[outcome.state])
                done[item.board] += 1
                result.finished[item.board].append(item.trial.number)
    finally:
        result.wall_seconds = time.perf_counter() - start
        for ref, item in running.items():
            ray.cancel(ref, force=True)
            _fail(item, run_dir, result, "cancelled: the search stopped", interrupted=True)


def _is_worker_loss(error: BaseException) -> bool:
    """Subclasses of the worker-loss errors (e.g. ``OwnerDiedError`` of ``ObjectLostError``)."""
    return any(cls.__name__ in _WORKER_LOSS_ERRORS for cls in type(error).__mro__)


def _cause(error: BaseException) -> BaseException:
    """The exception a task raised, unwrapped from Ray's ``RayTaskError`` when possible."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def _describe(error: BaseException) -> str:
    text = str(_cause(error)).strip().splitlines()
    return f"{type(_cause(error)).__name__}: {text[0] if text else ''}"


def _fail(item: _Running, run_dir: Path, result: DistributedResult, reason: str, *, interrupted: bool = False) -> None:
    """Mark a submitted trial FAIL with its reason and drop its half-written trial folder.

    ``interrupted`` trials (cancelled, not at fault) get the user attribute ``interrupted``, so
    that a resumed run enqueues their parameters again (:mod:`mcunas.search.resume`).
    """
    from optuna.trial import TrialState

    item.trial.set_user_attr("failure", reason)
    if interrupted:
        item.trial.set_user_attr("interrupted", True)
    item.study.tell(item.trial.number, state=TrialState.FAIL)
    shutil.rmtree(run_dir / "trials" / item.board / str(item.trial.number), ignore_errors=True)
    result.failed[item.board].append(item.trial.number)
    _logger.warning("trial %s of board %s failed (%s)", item.trial.number, item.board, reason)


def _retry(item: _Running, result: DistributedResult) -> None:
    """Enqueue the failed trial's parameters again, unless it used its last attempt."""
    from optuna.trial import TrialState

    number = item.trial.number
    failed = item.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    params = next((t.params for t in failed if t.number == number), {})
    if item.attempt >= MAX_ATTEMPTS:
        _logger.warning("trial %s: %d attempts died, its candidate is dropped", number, item.attempt)
        return
    item.study.enqueue_trial(params, user_attrs={"retry_of": number, "attempt": item.attempt + 1})
    result.retried[item.board].append(number)
