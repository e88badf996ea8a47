"""Ray for the search: start a local cluster or join one, check what it offers.

:func:`ray_cluster` connects for the duration of a block: with no address it starts a local
cluster that registers and binds on 127.0.0.1 only and keeps its temporary files in
``<run_dir>/ray`` (or in a short folder under the system temp directory when that path would
exceed the length limit of Unix socket paths), and shuts it down afterwards; with ``"auto"`` or
an address it joins a running cluster and leaves it running. :func:`check_shared_run_dir`
refuses a joined cluster whose nodes do not see the run directory at the same path.
:class:`WorkerResources` is what each trial task reserves.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mcunas.errors import ConfigError, McunasError
from mcunas.io import atomic_write_text

_logger = logging.getLogger(__name__)

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


def check_shared_run_dir(run_dir: Path) -> None:
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
