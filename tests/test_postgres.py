"""Trials on Ray against a real PostgreSQL server, and that server stopped mid-search.

The toy objective of tests/toys.py (two sampled parameters, a sleep in place of training) runs
with 2 workers on a local Ray cluster, its study in a fresh database of the test server
(conftest.py's ``postgres_url``). The server is stopped with ``pg_ctlcluster`` while trials
run: for less time than ``storage_retry_s`` the driver waits it out and the search completes;
for longer the search stops with one StorageError, and the same call after the server is back
resumes it. Each time every requested trial completes once.
"""

from __future__ import annotations

import logging
import threading
import time

import optuna
from optuna.trial import TrialState
import pytest

from mcunas.errors import StorageError
from mcunas.search.cluster import WorkerResources
from toys import BOARDS, ToyEvaluator, assert_each_trial_once, create_studies, load_toy_study, run_toy

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _complete(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _stop_server_after(server, study, finished: int, stopped: threading.Event,
                       restart_when: threading.Event | None = None) -> None:
    """Stop the server once ``finished`` trials of ``study`` are COMPLETE in it (told, not only
    written to their folders); start it again once ``restart_when`` is set (at most 30 s later;
    None: leave it stopped)."""
    deadline = time.monotonic() + 120
    while _complete(study) < finished and time.monotonic() < deadline:
        time.sleep(0.05)
    server.control("stop")
    stopped.set()
    if restart_when is not None:
        restart_when.wait(timeout=30)
        time.sleep(1.0)  # a little longer: the driver's next attempt fails too
        server.control("start")


class _RetryWatcher(logging.Handler):
    """Sets ``seen`` when the storage logs that it retries (the driver is waiting the outage out)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.seen.set()


def test_two_ray_workers_share_a_postgresql_study(tmp_path, postgres_url, shared_cluster, ray_can_pickle_toys):
    create_studies(postgres_url, "pg")
    result = run_toy(ToyEvaluator("pg", str(tmp_path), seconds=0.2), postgres_url, 6, WorkerResources(workers=2),
                     seed=0, run_dir=tmp_path)
    study = load_toy_study(postgres_url, "pg")
    assert_each_trial_once(study, 6, tmp_path, result.finished[BOARDS[0]])
    assert not result.failed[BOARDS[0]]
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2, "both workers ran trials"


def test_server_stopped_for_a_few_seconds_is_waited_out(
    tmp_path, postgres_server, postgres_url, shared_cluster, ray_can_pickle_toys, caplog
):
    create_studies(postgres_url, "pgdown")
    stopped, watcher = threading.Event(), _RetryWatcher()
    study_view = load_toy_study(postgres_url, "pgdown")
    stopper = threading.Thread(target=_stop_server_after, args=(postgres_server, study_view, 2, stopped, watcher.seen))
    storage_logger = logging.getLogger("mcunas.rundir.storage")
    storage_logger.addHandler(watcher)
    stopper.start()
    try:
        with caplog.at_level(logging.WARNING, logger="mcunas"):
            result = run_toy(ToyEvaluator("pgdown", str(tmp_path), seconds=1.0), postgres_url, 8,
                             WorkerResources(workers=2), seed=0, run_dir=tmp_path, storage_retry_s=60)
    finally:
        stopper.join()
        storage_logger.removeHandler(watcher)
    assert stopped.is_set() and watcher.seen.is_set(), "the driver never waited for the server"
    assert postgres_server.password not in caplog.text
    study = load_toy_study(postgres_url, "pgdown")
    assert_each_trial_once(study, 8, tmp_path, result.finished[BOARDS[0]])
    for trial in study.trials:
        if trial.state.name == "FAIL":
            assert trial.user_attrs["failure"].startswith("storage unavailable"), trial.user_attrs


def test_server_down_longer_than_the_retry_time_stops_the_search_once_then_it_resumes(
    tmp_path, postgres_server, postgres_url, shared_cluster, ray_can_pickle_toys
):
    create_studies(postgres_url, "pglong")
    evaluator = ToyEvaluator("pglong", str(tmp_path), seconds=1.0)
    stopped = threading.Event()
    stopper = threading.Thread(target=_stop_server_after, args=(postgres_server, load_toy_study(postgres_url, "pglong"), 1,
                                                                   stopped))
    stopper.start()
    try:
        with pytest.raises(StorageError) as error:
            run_toy(evaluator, postgres_url, 6, WorkerResources(workers=2), seed=0, run_dir=tmp_path,
                    storage_retry_s=2)
    finally:
        stopper.join()
    message = str(error.value)
    assert "was unreachable for 2 s" in message and "run the same command again to resume" in message
    assert postgres_server.password not in message and ":***@" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__, "one error, not a chain"

    postgres_server.control("start")
    result = run_toy(evaluator, postgres_url, 6, WorkerResources(workers=2), seed=0, run_dir=tmp_path)
    study = load_toy_study(postgres_url, "pglong")
    assert_each_trial_once(study, 6, tmp_path)
    assert len(result.finished[BOARDS[0]]) < 6, "the trials finished before the outage count"
