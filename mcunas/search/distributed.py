"""Distributed search: Optuna trials evaluated as Ray tasks that share one Optuna storage.

The driver (the process that calls :func:`run_trials_on_ray`) owns the studies, one per board.
It asks every new trial itself, so it always knows which trial each task runs; submits one Ray
task per trial, with at most ``workers`` tasks in flight so that the sampler sees recent results;
and tells each result. A worker opens the storage itself from its URL or journal path, rebuilds
the trial with ``optuna.Trial(study, trial_id)`` and runs the search's per-trial evaluation
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

Storage (:func:`open_storage`). By default the journal file ``journal.log`` in the run directory
(``optuna.storages.JournalStorage`` on a ``JournalFileBackend``, whose symlink lock also works on
NFS); any SQLAlchemy URL is accepted (``postgresql+psycopg2://...`` for several machines). Each
worker opens the storage itself from its URL or path.

Network. A local cluster (no address) registers and binds on 127.0.0.1 only, and keeps its
temporary files in ``<run_dir>/ray`` (or in a short folder under the system temp directory when
that path would exceed the length limit of Unix socket paths). With ``"auto"`` or an address,
the driver joins an existing cluster and leaves it running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

from mcunas.errors import ConfigError, McunasError
from mcunas.io import atomic_write_text

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)

# Name of the journal file (Optuna JournalStorage) in the run directory.
JOURNAL_FILE = "journal.log"

# Attempts per candidate (parameter set) whose worker died, the first one included.
MAX_ATTEMPTS = 3

# Longest temp dir Ray can use: its Unix socket paths (<temp>/session_<date>_<pid>/sockets/...)
# add about 65 characters and must stay within the 107-character limit of the OS.
_MAX_RAY_TEMP_DIR_CHARS = 40

# Object store of a local cluster: tasks exchange only small values (trial ids, objective values).
_OBJECT_STORE_BYTES = 128 * 1024**2

# Ray (>= 2.5x) clusters started with `ray start` use token authentication; a driver given an
# explicit address does not enable it by itself.
_AUTH_HINT = (
    "; the cluster uses token authentication: set RAY_AUTH_MODE=token and provide its token "
    "(~/.ray/auth_token or RAY_AUTH_TOKEN, as on the head node)"
)

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
class WorkerResources:
    """What each trial task reserves on the cluster and how many torch threads it uses."""

    workers: int
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"search.workers: must be at least 1, got {self.workers}")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"search.cpus_per_worker: must be > 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"search.gpus_per_worker: must be >= 0, got {self.gpus_per_worker}")

    @property
    def torch_threads(self) -> int:
        """Intra-op threads of a worker: its whole CPUs, at least one."""
        return max(1, int(self.cpus_per_worker))


@dataclass(frozen=True)
class TrialTask:
    """Everything one Ray task needs to evaluate one trial (sent to the worker)."""

    storage_url: str
    board: str
    trial_id: int
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


# ----------------------------------------------------------------------------- storage


def default_storage_url(run_dir: str | os.PathLike[str]) -> str:
    """The storage of a distributed run: the journal file in the run directory (absolute path)."""
    return str(Path(run_dir).resolve() / JOURNAL_FILE)


def is_journal_path(url: str) -> bool:
    """True for a journal file path, False for an SQLAlchemy URL (``dialect[+driver]://...``)."""
    return "://" not in url


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open an Optuna storage from a journal file path or an SQLAlchemy URL.

    Raises:
        ConfigError: the storage cannot be opened (the message names ``search.storage``); for a
            missing database driver (PostgreSQL without psycopg2) it names what to install.
    """
    import optuna

    if is_journal_path(url):
        path = Path(url)
        if not path.parent.is_dir():
            raise ConfigError(f"search.storage: folder of the journal file {path} does not exist")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    # SQLite serializes writers: wait for its lock instead of failing at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"search.storage: {_redacted(url)} needs the database driver {error.name!r}, which is not installed "
            f"(PostgreSQL: pip install 'mcunas[postgres]')"
        ) from error
    except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise ConfigError(f"search.storage: cannot open {_redacted(url)}: {error}") from error


def _redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


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
    study = task.evaluator.load_study(_worker_storage(task.storage_url), task.board, task.sampler_seed)
    trial = optuna.Trial(study, task.trial_id)
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


# ----------------------------------------------------------------------------- cluster


@contextlib.contextmanager
def ray_cluster(
    address: str | None,
    resources: WorkerResources,
    temp_root: str | os.PathLike[str],
) -> Iterator[None]:
    """Connect to Ray for the duration of the block.

    Args:
        address: None starts a local cluster with ``workers * cpus_per_worker`` CPUs (and the
            GPUs Ray detects) that listens on 127.0.0.1 only, and shuts it down on exit,
            also on errors and Ctrl-C. ``"auto"`` or ``host:port`` joins a running cluster and
            leaves it running (joining ``127.x.x.x:port`` keeps this driver on loopback too). A
            Ray connection that this process already holds is used as is.
        resources: the per-worker reservation, checked against the cluster's resources.
        temp_root: folder for a local cluster's temporary files (``<temp_root>/ray``), replaced
            by a short folder in the system temp directory when the path is too long for Ray's
            Unix sockets.

    Raises:
        ConfigError: the cluster cannot give one worker the CPUs or GPUs it asks for.
        McunasError: the cluster at ``address`` cannot be reached.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray folds worker log lines that differ only in numbers (trial lines do); keep them all.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    if ray.is_initialized():
        _check_cluster_resources(ray.cluster_resources(), resources)
        yield
        return
    if address is None:
        with _loopback_only():
            ray.init(
                num_cpus=max(1, math.ceil(resources.workers * resources.cpus_per_worker)),
                include_dashboard=False,
                object_store_memory=_OBJECT_STORE_BYTES,
                _temp_dir=_ray_temp_dir(temp_root),
                logging_level=logging.WARNING,
            )
    else:
        try:
            with _loopback_only() if _is_loopback(address) else contextlib.nullcontext():
                ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError) as error:
            hint = _AUTH_HINT if _caused_by(error, ray.exceptions.AuthenticationError) else ""
            raise McunasError(
                f"search.ray_address: cannot join the Ray cluster at {address!r}: {error}{hint}"
            ) from error
    try:
        _check_cluster_resources(ray.cluster_resources(), resources)
        yield
    finally:
        ray.shutdown()  # stops a local cluster; only disconnects from a joined one


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Make a cluster started in this block register its node on 127.0.0.1 and bind there.

    Ray resolves a node address of "127.0.0.1" to the machine's primary interface unless its
    multi-node mode is off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when ``ray`` is first
    imported); the variable is set for the processes the cluster starts and the module constant
    for this one, and both are restored afterwards.
    """
    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_env, saved_flag = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved_env


def _caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    """True when ``error`` or an exception in its cause/context chain is a ``kind``."""
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
    return False


def _is_loopback(address: str) -> bool:
    """True for ``127.x.x.x:port`` or ``localhost:port``: a cluster on this machine's loopback."""
    host = address.rsplit(":", 1)[0]
    return host == "localhost" or host.startswith("127.")


def _ray_temp_dir(temp_root: str | os.PathLike[str]) -> str:
    """``<temp_root>/ray`` when short enough for Ray's socket paths, else a fresh short folder."""
    preferred = Path(temp_root).resolve() / "ray"
    if len(str(preferred)) <= _MAX_RAY_TEMP_DIR_CHARS:
        preferred.mkdir(parents=True, exist_ok=True)
        return str(preferred)
    short = tempfile.mkdtemp(prefix="mcunas-ray-")
    if len(short) > _MAX_RAY_TEMP_DIR_CHARS:
        short = tempfile.mkdtemp(prefix="mcunas-ray-", dir="/tmp")
    _logger.warning("Ray temporary files (logs) go to %s: %s is too long for Ray's socket paths", short, preferred)
    return short


def _check_cluster_resources(available: dict[str, float], resources: WorkerResources) -> None:
    """Refuse a reservation no node can ever satisfy (Ray would wait forever)."""
    cpus, gpus = available.get("CPU", 0.0), available.get("GPU", 0.0)
    if resources.cpus_per_worker > cpus:
        raise ConfigError(
            f"search.cpus_per_worker: {resources.cpus_per_worker} CPUs per worker, the Ray cluster has {cpus:g}"
        )
    if resources.gpus_per_worker > gpus:
        raise ConfigError(
            f"search.gpus_per_worker: {resources.gpus_per_worker} GPUs per worker, the Ray cluster has {gpus:g}"
        )
    if resources.workers * resources.cpus_per_worker > cpus:
        _logger.warning(
            "the Ray cluster has %g CPUs: at most %d of the %d workers run at once",
            cpus,
            int(cpus // resources.cpus_per_worker),
            resources.workers,
        )


def _read_text(path: str) -> str | None:
    """The text of ``path`` on the node that runs this, None when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None


def nodes_not_seeing(path: str | os.PathLike[str], expected_text: str) -> list[str]:
    """Addresses of the cluster's live nodes on which ``path`` does not hold ``expected_text``.

    One zero-CPU task is pinned to each node; it reads the file there.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node["Alive"]]
    read = ray.remote(num_cpus=0, max_retries=0)(_read_text)
    refs = [
        read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(str(path))
        for node in nodes
    ]
    texts = ray.get(refs)
    return [node["NodeManagerAddress"] for node, text in zip(nodes, texts) if text != expected_text]


def _check_shared_run_dir(run_dir: Path) -> None:
    """Refuse a joined cluster with nodes that do not see the run directory at the same path.

    Workers write ``trials/<board>/<n>/`` (and may read a journal storage) there; a node with
    its own local folder would keep the results where the driver never finds them.
    """
    marker = run_dir / f".ray-shared-check-{os.getpid()}"
    token = f"{os.uname().nodename}:{os.getpid()}:{time.time_ns()}"
    atomic_write_text(marker, token)
    try:
        missing = nodes_not_seeing(marker, token)
    finally:
        marker.unlink(missing_ok=True)
    if missing:
        raise ConfigError(
            f"search.ray_address: Ray node(s) {', '.join(missing)} do not see the run directory {run_dir}; "
            f"every node must mount it at the same path (shared file system)"
        )


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
    boards: Sequence[str],
    trials: int,
    resources: WorkerResources,
    *,
    seed: int,
    run_dir: str | os.PathLike[str],
    ray_address: str | None = None,
    max_worker_deaths: int | None = None,
) -> DistributedResult:
    """Run trials on Ray until every board's study holds ``trials`` finished trials.

    The studies must exist in the storage (one per board, created by the search); trials
    already finished count (a resumed run only adds the missing ones). Call it from the run's
    driver process only.

    Args:
        evaluator: the search's per-trial work (picklable), see :class:`TrialEvaluator`.
        storage_url: journal file path or SQLAlchemy URL, opened by the driver and each worker.
        boards: board names, one study each.
        trials: finished (COMPLETE or PRUNED) trials wanted per board.
        resources: workers and what each reserves.
        seed: the experiment seed; board ``i``'s study samples with ``seed + i`` on the driver, as
            in a sequential run, and with :func:`worker_sampler_seed` of that in the workers.
        run_dir: the run directory (failed trials' folders ``trials/<board>/<n>`` are removed
            there; a local cluster's temporary files go under it).
        ray_address: None for a local cluster, ``"auto"`` or ``host:port`` to join one.
        max_worker_deaths: give up after this many lost tasks (default: ``max(3, trials)``).

    Raises:
        McunasError: workers died more than ``max_worker_deaths`` times.
        Exception: whatever the evaluation raised in a worker (the trial is marked FAIL).
    """
    from mcunas.search.resume import finished_trials, recover_interrupted

    storage = open_storage(storage_url)
    board_seeds = {board: seed + index for index, board in enumerate(boards)}
    studies = {board: evaluator.load_study(storage, board, board_seeds[board]) for board in boards}
    result = DistributedResult(
        finished={board: [] for board in boards},
        failed={board: [] for board in boards},
        retried={board: [] for board in boards},
    )
    for study in studies.values():
        recover_interrupted(study, storage)
    done = {board: finished_trials(study) for board, study in studies.items()}
    if all(done[board] >= trials for board in boards):
        return result
    with ray_cluster(ray_address, resources, run_dir):
        if ray_address is not None:
            _check_shared_run_dir(Path(run_dir).resolve())
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
            trial._trial_id,
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
                item.study.tell(item.trial, outcome.values, state=TrialState[outcome.state])
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
    item.study.tell(item.trial, state=TrialState.FAIL)
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
