"""Load on the Optuna storage: estimate-only trials on Ray, journal file against PostgreSQL.

    .venv/bin/python benchmarks/storage_load.py [--trials 48] [--workers 1 2 4 8] [--postgres URL]

The trials are the search's own (:class:`mcunas.search.search.SearchEvaluator`: sample a
MobileNetV2 architecture, build its op graph, estimate it, record the user attributes and
``trials/<board>/<n>/``) with a latency ceiling no candidate meets, so every trial is completed
as infeasible right after its estimate: no training, the most storage traffic per second of
work a search can make. For each storage and worker count, a fresh run directory (and database)
gets a warm-up run (imports, contexts), then ``--trials`` timed trials through
:func:`mcunas.search.dispatch.run_trials_on_ray` on one local Ray cluster (loopback, as many
logical CPUs as the most workers).

Measured: trials per minute (wall clock of the timed run), and the share of time spent in the
storage: every call from a study or trial into its storage (the cached RDB storage or the
journal storage, as Optuna makes them) is timed, in the workers (per task: opening the study,
rebuilding the trial, sampling, attributes) and in the driver (ask, tell). ``workers %`` is the
workers' storage time over their task time, ``driver %`` the driver's storage time over the
run's wall time. The PostgreSQL server is the test server of tests/conftest.py by default
(``make setup-postgres``); without one only the journal rows are printed. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mcunas.config import parse_experiment  # noqa: E402
from mcunas.estimators import load_board  # noqa: E402
from mcunas.rundir.runinfo import prepare_run_dir  # noqa: E402
from mcunas.rundir.storage import open_storage  # noqa: E402
from mcunas.search.cluster import WorkerResources, ray_cluster  # noqa: E402
from mcunas.search.dispatch import run_trials_on_ray  # noqa: E402
from mcunas.search.search import SearchEvaluator, StudyFactory  # noqa: E402
from mcunas.secrets import redact  # noqa: E402

BOARD = "arduino-nano-33-ble-sense"
DEFAULT_POSTGRES = os.environ.get(
    "MCUNAS_TEST_POSTGRES_URL", "postgresql+psycopg2://mcunas_test:PASSWORD_OF_THE_TEST@127.0.0.1:5432/postgres"
)

EXPERIMENT = {
    "name": "load",
    "seed": 0,
    "dataset": {"name": "synthetic", "resolution": 32, "max_train_samples": 64, "max_test_samples": 16},
    "space": {"name": "mobilenetv2"},
    "boards": [BOARD],
    "objectives": ["accuracy", "latency_ms"],
    "constraints": {"max_latency_ms": 1e-6},  # no candidate is feasible: estimate only
    "search": {"sampler": "random", "trials": 1, "workers": 2},
    "distillation": {"enabled": False},
}


class _TimedStorage:
    """Forwards every call to an Optuna storage and adds its duration to ``seconds``."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._storage, name)
        if not callable(attribute):
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def _timed(study: Any) -> Any:
    """The study with its storage calls timed (Optuna's Study and Trial reach the storage only
    through ``study._storage``)."""
    study._storage = _TimedStorage(study._storage)
    return study


@dataclass(frozen=True)
class TimedEvaluator:
    """The search's evaluator; records per task its storage seconds and task seconds as user attrs."""

    inner: SearchEvaluator

    def load_study(self, storage: Any, board: str, sampler_seed: int) -> Any:
        study = _timed(self.inner.load_study(storage, board, sampler_seed))
        study._storage.started = time.perf_counter()
        return study

    def evaluate(self, trial: Any, board: str) -> Any:
        timed = trial.study._storage
        values = self.inner.evaluate(trial, board)
        task_s = time.perf_counter() - timed.started
        storage_s = timed.seconds
        trial.set_user_attr("bench_task_s", task_s)
        trial.set_user_attr("bench_storage_s", storage_s)
        return values


@dataclass
class Row:
    storage: str
    workers: int
    trials: int
    wall_s: float
    worker_share: float
    driver_share: float

    @property
    def per_minute(self) -> float:
        return 60.0 * self.trials / self.wall_s


def _server_sql(server_url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE) on the server's database."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(sql))


class _Databases:
    """Fresh databases on a server (its role needs CREATEDB), dropped by :meth:`drop_all`."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.names: list[str] = []

    def new(self) -> str:
        name = f"mcunas_load_{uuid.uuid4().hex[:10]}"
        _server_sql(self.server_url, f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return self.server_url.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        for name in self.names:
            _server_sql(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(run_dir: Path, storage_url: str | None, trials: int, workers: int) -> tuple[float, float, float]:
    """(wall s, workers' storage share, driver's storage share) of ``trials`` trials."""
    experiment = parse_experiment({**EXPERIMENT, "search": {**EXPERIMENT["search"], "storage": storage_url}})
    layout = prepare_run_dir(experiment, run_dir, [load_board(BOARD)], several_processes=True)
    factory = StudyFactory(experiment, layout)
    study = _timed(factory.open(open_storage(layout.storage_url), BOARD, experiment.seed))
    evaluator = TimedEvaluator(SearchEvaluator(factory))
    start = time.perf_counter()
    result = run_trials_on_ray(evaluator, layout.storage_url, {BOARD: study}, trials, WorkerResources(workers),
                               seed=experiment.seed, run_dir=run_dir)
    wall = time.perf_counter() - start
    if len(result.finished[BOARD]) != trials:
        raise RuntimeError(f"{len(result.finished[BOARD])} of {trials} trials finished")
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    task_s = sum(t.user_attrs["bench_task_s"] for t in done)
    storage_s = sum(t.user_attrs["bench_storage_s"] for t in done)
    return wall, storage_s / task_s, study._storage.seconds / wall


def measure(root: Path, name: str, storage: Any, trials: int, workers: list[int]) -> list[Row]:
    """``storage()`` gives a fresh storage URL (None: the run directory's journal file)."""
    rows = []
    for count in workers:
        _run(root / f"{name}-warm{count}", storage(), count, count)
        wall, worker_share, driver_share = _run(root / f"{name}-{count}", storage(), trials, count)
        rows.append(Row(name, count, trials, wall, worker_share, driver_share))
        print(f"  {name} x{count}: {60 * trials / wall:.0f} trials/min", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="timed trials per storage and worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL whose role may create databases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    databases = _Databases(args.postgres)
    try:
        _server_sql(args.postgres, "SELECT 1")
        postgres_ok = True
    except Exception as error:  # no server, no driver: the journal rows alone
        print(f"no PostgreSQL at {redact(args.postgres)} ({error}): journal file only", file=sys.stderr)
        postgres_ok = False

    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mcunas-load-", dir="/tmp") as tmp:
        root = Path(tmp)
        with ray_cluster(None, WorkerResources(max(args.workers)), root):
            rows += measure(root, "journal file", lambda: None, args.trials, args.workers)
            if postgres_ok:
                try:
                    rows += measure(root, "PostgreSQL", databases.new, args.trials, args.workers)
                finally:
                    databases.drop_all()
    load_after = os.getloadavg()

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after.\n")
    print("| storage | workers | trials | wall s | trials/min | workers' time in storage | driver's time in storage |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row.storage} | {row.workers} | {row.trials} | {row.wall_s:.1f} | {row.per_minute:.0f} | "
              f"{100 * row.worker_share:.0f} % | {100 * row.driver_share:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
