"""Cheap real Optuna objectives and helpers for the tests of distributed runs and their faults.

:class:`ToyEvaluator` is a real ``TrialEvaluator``: it samples two parameters through the
trial, writes ``trials/<board>/<n>/started`` (and ``done`` at the end), sleeps in place of
training and returns two objective values; it can SIGKILL its own worker process or raise.
Ray workers cannot import this module: tests ship it by value (the ``ray_can_pickle_toys``
fixture of conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from mcunas.rundir.storage import open_storage
from mcunas.search.cluster import WorkerResources
from mcunas.search.dispatch import DistributedResult, run_trials_on_ray
from mcunas.search.resume import recover_interrupted

BOARDS = ("board-a",)


@dataclass(frozen=True)
class ToyEvaluator:
    """See the module docstring. When ``kill_marker`` is a path, the first trial to create that
    file (atomically) SIGKILLs its own worker process half-way through; ``""`` kills every
    trial; ``raise_on`` makes that trial number raise instead."""

    study_prefix: str
    run_dir: str
    kill_marker: str | None = None
    raise_on: int | None = None
    seconds: float = 0.3

    def load_study(self, storage, board, sampler_seed):
        return optuna.load_study(
            study_name=f"{self.study_prefix}:{board}",
            storage=storage,
            sampler=optuna.samplers.RandomSampler(seed=sampler_seed),
        )

    def evaluate(self, trial, board):
        import ray

        x = trial.suggest_int("x", 0, 10**9)
        y = trial.suggest_float("y", -1.0, 1.0)
        trial.set_user_attr("pid", os.getpid())
        folder = Path(self.run_dir) / "trials" / board / str(trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        node_ip = ray.util.get_node_ip_address() if ray.is_initialized() else "local"
        (folder / "started").write_text(json.dumps({"pid": os.getpid(), "node_ip": node_ip}))
        time.sleep(self.seconds / 2)
        if self.kill_marker == "" or (self.kill_marker and claim(self.kill_marker)):
            os.kill(os.getpid(), signal.SIGKILL)
        if trial.number == self.raise_on:
            raise ValueError(f"trial {trial.number} is broken")
        time.sleep(self.seconds / 2)
        (folder / "done").write_text("")
        return x / 1e9, y * y


def claim(path: str) -> bool:
    """Create ``path``; True for the one process that created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def create_studies(storage_url: str, prefix: str) -> None:
    storage = open_storage(storage_url)
    for board in BOARDS:
        optuna.create_study(study_name=f"{prefix}:{board}", storage=storage, directions=["minimize", "minimize"])


def run_toy(evaluator: ToyEvaluator, url: str, trials: int, resources: WorkerResources, **options) -> DistributedResult:
    """``run_trials_on_ray`` on the evaluator's studies of BOARDS, opened and recovered (trials a
    stopped run left behind, their folders removed) by this driver as the search does."""
    storage = open_storage(url)
    studies = {board: evaluator.load_study(storage, board, index) for index, board in enumerate(BOARDS)}
    for board, study in studies.items():
        recover_interrupted(study, lambda number, board=board: Path(evaluator.run_dir) / "trials" / board / str(number))
    return run_trials_on_ray(evaluator, url, studies, trials, resources, **options)


def load_toy_study(url: str, prefix: str) -> optuna.Study:
    return optuna.load_study(study_name=f"{prefix}:{BOARDS[0]}", storage=open_storage(url))


def assert_each_trial_once(study: optuna.Study, trials: int, run_dir: Path, finished: list[int] | None = None) -> None:
    """The fault tests' common claim: ``trials`` COMPLETE trials, none RUNNING or WAITING, each
    failed candidate that was sampled completed once as a retry with the parameters it drew, a
    folder (with ``done``) for every complete trial and none for a failed one, and, when given,
    the driver's ``finished`` numbers are the complete trials (no result lost or told twice)."""
    states = {t.number: t.state.name for t in study.trials}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == trials, states
    assert not {"RUNNING", "WAITING"} & set(states.values()), states
    if finished is not None:
        assert sorted(finished) == sorted(t.number for t in complete)
    folders = run_dir / "trials" / BOARDS[0]
    for trial in study.trials:
        folder = folders / str(trial.number)
        if trial.state.name == "COMPLETE":
            assert (folder / "done").is_file(), f"trial {trial.number}: folder incomplete"
        else:
            assert not folder.exists(), f"trial {trial.number} ({trial.state.name}) left a folder"
    for failed in (t for t in study.trials if t.state.name == "FAIL" and t.params):
        retries = [t for t in complete if t.user_attrs.get("retry_of") == failed.number]
        retried_again = [t for t in study.trials if t.user_attrs.get("retry_of") == failed.number]
        assert len(retried_again) == 1, f"trial {failed.number} retried {len(retried_again)} times"
        if retries:
            # every parameter the failed trial drew is repeated; one that failed between two
            # suggest calls (the storage went down) drew only the first, and its retry the rest
            retried = retries[0].params
            assert {name: retried.get(name) for name in failed.params} == failed.params, (failed.params, retried)
    assert len({t.params["x"] for t in complete}) == trials, "a candidate completed twice"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_under(psutil, temp_dir: str) -> list:
    """The Ray processes a test started: those whose command line names its unique temp dir,
    and their children (workers, agents)."""
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or ()):
            for member in [process, *process.children(recursive=True)]:
                found[member.pid] = member
    return list(found.values())


def ray_cli() -> list[str]:
    """The ``ray`` command of this interpreter (also in a virtual environment without its scripts)."""
    import sys

    return [sys.executable, "-m", "ray.scripts.scripts"]
