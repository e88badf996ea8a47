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

Storage outages. A worker whose trial cannot reach the storage (database restart) returns
``STORAGE_LOST``; the driver fails and retries that trial as for a dead worker. The driver
waits out an unreachable storage itself (:func:`mcunas.rundir.storage.retry_storage`, for
``storage_retry_s``), then stops with one :class:`~mcunas.errors.StorageError`; the trials in
flight stay RUNNING and the next run retries them.

Storage: each worker opens the storage itself from its URL or journal path
(:func:`mcunas.rundir.storage.open_storage`); the cluster: :mod:`mcunas.search.cluster`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, TypeVar

from mcunas.errors import McunasError, StorageError
from mcunas.rundir.storage import describe_storage_error, is_storage_unavailable, open_storage, retry_storage
from mcunas.search.cluster import WorkerResources, check_shared_run_dir, ray_cluster
from mcunas.secrets import RedactingFormatter, redact

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)
T = TypeVar("T")

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

    storage_url: str = field(repr=False)  # usable: may hold a password
    board: str
    trial_number: int
    sampler_seed: int
    torch_threads: int
    evaluator: TrialEvaluator
    log_level: int  # of the driver's ``mcunas`` logger, so workers log what the driver would
    optuna_verbosity: int


# Outcome state of a task whose trial could not reach the storage (the driver retries it).
_STORAGE_LOST = "STORAGE_LOST"


@dataclass(frozen=True)
class TrialOutcome:
    """What a task returns: the trial's final state (``COMPLETE``, ``PRUNED``, or
    ``STORAGE_LOST`` when the storage became unreachable mid-trial) and values."""

    state: str
    values: tuple[float, ...] | None
    reason: str = ""


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
        storage_losses: tasks whose trial lost the storage mid-trial (database restart); their
            trials are failed and retried like those of dead workers.
        wall_seconds: time from the first submission to the last result, seconds.
    """

    finished: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, list[int]] = field(default_factory=dict)
    retried: dict[str, list[int]] = field(default_factory=dict)
    worker_deaths: int = 0
    storage_losses: int = 0
    wall_seconds: float = 0.0


@lru_cache(maxsize=4)
def _worker_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL per worker process (a journal is replayed incrementally)."""
    return open_storage(url)


# ----------------------------------------------------------------------------- worker side


def evaluate_trial_task(task: TrialTask) -> TrialOutcome:
    """Run one trial in a worker: rebuild the trial the driver asked, evaluate it, return values.

    The trial's final state is left to the driver; a pruned trial is returned as ``PRUNED``, a
    trial that lost the storage (database server unreachable) as ``STORAGE_LOST``.
    """
    import optuna
    import torch

    torch.set_num_threads(task.torch_threads)
    _configure_worker_logging(task.log_level)
    optuna.logging.set_verbosity(task.optuna_verbosity)
    try:
        storage = _worker_storage(task.storage_url)
        study = task.evaluator.load_study(storage, task.board, task.sampler_seed)
        # Read the study's trials first: an RDB storage's cache knows only the trials it has read,
        # and writing the parameters of an unknown trial fails (KeyError in Optuna's cache).
        study.get_trials(deepcopy=False)
        study_id = storage.get_study_id_from_name(study.study_name)
        trial = optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, task.trial_number))
        values = task.evaluator.evaluate(trial, task.board)
    except optuna.TrialPruned:
        return TrialOutcome("PRUNED", None)
    except Exception as error:
        if not is_storage_unavailable(error):
            raise
        _worker_storage.cache_clear()  # reconnect on the next task
        return TrialOutcome(_STORAGE_LOST, None, describe_storage_error(error))
    if isinstance(values, (int, float)):
        values = (values,)
    return TrialOutcome("COMPLETE", tuple(float(v) for v in values))


def _configure_worker_logging(level: int) -> None:
    """Log to stderr at the driver's level, passwords hidden; Ray forwards a worker's output to
    the driver (and keeps it in the worker's log file)."""
    logging.getLogger("mcunas").setLevel(level)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        root.addHandler(handler)


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
    storage_retry_s: float = 120.0,
    on_finished: Callable[[str, optuna.trial.FrozenTrial], None] | None = None,
    quiet_workers: bool = False,
) -> DistributedResult:
    """Run trials on Ray until every board's study holds ``trials`` finished trials.

    Trials already finished count (a resumed run only adds the missing ones); trials left
    RUNNING by an earlier driver must have been recovered
    (:func:`mcunas.search.resume.recover_interrupted`). Call it from the run's driver process
    only.

    Args:
        evaluator: the search's per-trial work (picklable), see :class:`TrialEvaluator`.
        storage_url: journal file path or SQLAlchemy URL of the studies' storage, usable as is
            (it may hold a password: it is never logged), which each worker opens.
        studies: board name -> the driver's study of that board (in that storage).
        trials: finished (COMPLETE or PRUNED) trials wanted per board.
        resources: workers and what each reserves.
        seed: the experiment seed; board ``i``'s study samples with ``seed + i`` on the driver
            (as in a sequential run), and with :func:`worker_sampler_seed` of that in the workers.
        run_dir: the run directory (failed trials' folders ``trials/<board>/<n>`` are removed
            there; a local cluster's temporary files go under it).
        ray_address: None for a local cluster, ``"auto"`` or ``host:port`` to join one.
        max_worker_deaths: give up after this many lost tasks (default: ``max(3, trials)``).
        storage_retry_s: how long the driver waits for an unreachable database server before it
            stops (:func:`mcunas.rundir.storage.retry_storage`), seconds.
        on_finished: called with (board, trial) after each trial is told COMPLETE or PRUNED.
        quiet_workers: workers log warnings only (their trial lines would break live progress
            lines on the driver's terminal).

    Raises:
        McunasError: workers died more than ``max_worker_deaths`` times.
        StorageError: the storage stayed unreachable for ``storage_retry_s`` seconds; trials then
            in flight stay RUNNING and are retried by the next run.
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
        log_level = logging.getLogger("mcunas").getEffectiveLevel()
        driver = _Driver(
            evaluator, storage_url, studies, done, trials, resources, board_seeds=board_seeds, run_dir=Path(run_dir),
            result=result, max_worker_deaths=max(3, trials) if max_worker_deaths is None else max_worker_deaths,
            storage_retry_s=storage_retry_s, on_finished=on_finished,
            worker_log_level=max(log_level, logging.WARNING) if quiet_workers else log_level,
        )
        driver.run()
    return result


class _Driver:
    """Keeps ``resources.workers`` trials in flight until every board has ``trials`` finished.

    Every storage call of the driver goes through :func:`retry_storage`, so that a database
    restart is waited out; the calls are safe to repeat (tell with ``skip_if_finished``).
    """

    def __init__(self, evaluator: TrialEvaluator, storage_url: str, studies: dict[str, optuna.Study],
                 done: dict[str, int], trials: int, resources: WorkerResources, *, board_seeds: dict[str, int],
                 run_dir: Path, result: DistributedResult, max_worker_deaths: int, storage_retry_s: float,
                 on_finished: Callable[[str, optuna.trial.FrozenTrial], None] | None, worker_log_level: int) -> None:
        import ray

        self.evaluator, self.storage_url, self.studies, self.done = evaluator, storage_url, studies, done
        self.trials, self.resources, self.board_seeds, self.run_dir = trials, resources, board_seeds, run_dir
        self.result, self.max_worker_deaths, self.storage_retry_s = result, max_worker_deaths, storage_retry_s
        self.on_finished, self.worker_log_level = on_finished, worker_log_level
        self.running: dict[Any, _Running] = {}
        self.remote = ray.remote(evaluate_trial_task).options(
            num_cpus=resources.cpus_per_worker, num_gpus=resources.gpus_per_worker, max_retries=0
        )

    def _storage(self, what: str, call: Callable[[], T]) -> T:
        return retry_storage(call, what=what, url=self.storage_url, retry_s=self.storage_retry_s)

    def run(self) -> None:
        import ray

        start = time.perf_counter()
        try:
            while True:
                while len(self.running) < self.resources.workers and self._submit_next():
                    pass
                if not self.running:
                    break
                ready, _ = ray.wait(list(self.running), num_returns=1)
                for ref in ready:
                    self._collect(ref)
            self._fail_orphans()
        finally:
            self.result.wall_seconds = time.perf_counter() - start
            self._cancel_running()

    def _submit_next(self) -> bool:
        import optuna

        in_flight = {board: 0 for board in self.studies}
        for item in self.running.values():
            in_flight[item.board] += 1
        open_boards = [b for b in self.studies if self.done[b] + in_flight[b] < self.trials]
        if not open_boards:
            return False
        board = min(open_boards, key=lambda b: self.done[b] + in_flight[b])
        study = self.studies[board]
        trial = self._storage(f"start a trial of board {board}", study.ask)
        task = TrialTask(
            self.storage_url,
            board,
            trial.number,
            worker_sampler_seed(self.board_seeds[board], trial.number),
            self.resources.torch_threads,
            self.evaluator,
            self.worker_log_level,
            optuna.logging.get_verbosity(),
        )
        self.running[self.remote.remote(task)] = _Running(study, board, trial, int(trial.user_attrs.get("attempt", 1)))
        return True

    def _collect(self, ref: Any) -> None:
        """Record the result of a finished task: tell it, or fail (and maybe retry) its trial."""
        import ray
        from optuna.trial import TrialState

        item = self.running.pop(ref)
        try:
            outcome: TrialOutcome = ray.get(ref)
        except ray.exceptions.RayError as error:
            if not _is_worker_loss(error):
                self._fail(item, f"error: {_describe(error)}")
                raise _cause(error) from error
            self.result.worker_deaths += 1
            self._fail(item, f"worker died: {_describe(error)}")
            self._retry(item)
            if self.result.worker_deaths > self.max_worker_deaths:
                raise McunasError(
                    f"search: Ray workers died {self.result.worker_deaths} times (limit {self.max_worker_deaths}); "
                    f"last: {_describe(error)}. See the worker logs under the Ray temp dir."
                ) from error
            return
        if outcome.state == _STORAGE_LOST:
            self.result.storage_losses += 1
            self._fail(item, f"storage unavailable: {outcome.reason}")
            self._retry(item)
            return
        number = item.trial.number
        frozen = self._storage(
            f"record trial {number} of board {item.board}",
            lambda: item.study.tell(number, outcome.values, state=TrialState[outcome.state], skip_if_finished=True),
        )
        self.done[item.board] += 1
        self.result.finished[item.board].append(number)
        if self.on_finished is not None:
            self.on_finished(item.board, frozen)

    def _fail(self, item: _Running, reason: str, *, interrupted: bool = False) -> None:
        """Mark a submitted trial FAIL with its reason and drop its half-written trial folder.

        ``interrupted`` trials (cancelled, not at fault) get the user attribute ``interrupted``, so
        that a resumed run enqueues their parameters again (:mod:`mcunas.search.resume`).
        """
        from optuna.trial import TrialState

        number = item.trial.number

        def fail() -> None:
            item.trial.set_user_attr("failure", reason)
            if interrupted:
                item.trial.set_user_attr("interrupted", True)
            item.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

        self._storage(f"mark trial {number} of board {item.board} failed", fail)
        shutil.rmtree(self.run_dir / "trials" / item.board / str(number), ignore_errors=True)
        self.result.failed[item.board].append(number)
        _logger.warning("trial %s of board %s failed (%s)", number, item.board, reason)

    def _retry(self, item: _Running) -> None:
        """Enqueue the failed trial's parameters again, unless it used its last attempt."""
        from optuna.trial import TrialState

        number = item.trial.number
        if item.attempt >= MAX_ATTEMPTS:
            _logger.warning("trial %s: %d attempts failed, its candidate is dropped", number, item.attempt)
            return

        def enqueue() -> None:
            failed = item.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            params = next((t.params for t in failed if t.number == number), {})
            item.study.enqueue_trial(params, user_attrs={"retry_of": number, "attempt": item.attempt + 1})

        self._storage(f"queue trial {number} of board {item.board} again", enqueue)
        self.result.retried[item.board].append(number)

    def _fail_orphans(self) -> None:
        """Fail trials left RUNNING that no task runs: an ``ask`` whose commit went through while
        the connection broke, repeated by :func:`retry_storage`, leaves one such trial behind."""
        from optuna.trial import TrialState

        for board, study in self.studies.items():
            orphans = self._storage(f"list the trials of board {board}",
                                    lambda: study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            for trial in orphans:
                self._storage(f"mark trial {trial.number} of board {board} failed",
                              lambda number=trial.number: study.tell(number, state=TrialState.FAIL,
                                                                     skip_if_finished=True))
                _logger.info("trial %s of board %s never ran (created while the storage connection broke): failed",
                             trial.number, board)

    def _cancel_running(self) -> None:
        """Cancel the tasks still in flight and mark their trials interrupted.

        Runs while an exception may be propagating: a storage that is unreachable now leaves the
        trials RUNNING (the next run fails and retries them) instead of hiding that exception.
        """
        import ray

        for ref, item in self.running.items():
            ray.cancel(ref, force=True)
            try:
                self._fail(item, "cancelled: the search stopped", interrupted=True)
            except StorageError:
                _logger.warning("trial %s of board %s is left running (storage unreachable); the next run retries it",
                                item.trial.number, item.board)
        self.running.clear()


def _is_worker_loss(error: BaseException) -> bool:
    """Subclasses of the worker-loss errors (e.g. ``OwnerDiedError`` of ``ObjectLostError``)."""
    return any(cls.__name__ in _WORKER_LOSS_ERRORS for cls in type(error).__mro__)


def _cause(error: BaseException) -> BaseException:
    """The exception a task raised, unwrapped from Ray's ``RayTaskError`` when possible."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def _describe(error: BaseException) -> str:
    text = redact(str(_cause(error))).strip().splitlines()
    return f"{type(_cause(error)).__name__}: {text[0] if text else ''}"
