"""Distributed search on real Ray clusters, with real worker deaths mid-trial.

Most cases use a cheap real Optuna objective (two sampled parameters, a short sleep standing in
for training) on one shared local cluster, so that the machinery is tested in seconds: a worker
SIGKILLs its own process in the middle of a trial, an evaluation raises, workers keep dying.
The slow cases send a real SIGINT to the driver, join a cluster started with ``ray start
--head``, and run the real search (training, distillation, finalization, report) sequentially
and on Ray while a worker is SIGKILLed from outside during training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from mcunas.errors import ConfigError, McunasError
from mcunas.rundir.storage import default_storage_url, open_storage
from mcunas.search import cluster
from mcunas.search.cluster import WorkerResources
from mcunas.search.dispatch import run_trials_on_ray
from mcunas.search.resume import recover_interrupted

optuna.logging.set_verbosity(optuna.logging.WARNING)
BOARDS = ("board-a",)


@dataclass(frozen=True)
class ToyEvaluator:
    """Samples two parameters, writes trials/<board>/<n>/started, returns two objective values.

    When ``kill_marker`` is a path, the first trial to create that file (atomically) SIGKILLs
    its own worker process half-way through; ``""`` kills every trial; ``raise_on`` makes that
    trial number raise instead.
    """

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
        x = trial.suggest_int("x", 0, 10**9)
        y = trial.suggest_float("y", -1.0, 1.0)
        trial.set_user_attr("pid", os.getpid())
        folder = Path(self.run_dir) / "trials" / board / str(trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "started").write_text(str(os.getpid()))
        time.sleep(self.seconds / 2)
        if self.kill_marker == "" or (self.kill_marker and _claim(self.kill_marker)):
            os.kill(os.getpid(), signal.SIGKILL)
        if trial.number == self.raise_on:
            raise ValueError(f"trial {trial.number} is broken")
        time.sleep(self.seconds / 2)
        return x / 1e9, y * y


def _claim(path: str) -> bool:
    """Create ``path``; True for the one process that created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def run_toy(evaluator, url: str, trials: int, resources: WorkerResources, **options):
    """``run_trials_on_ray`` on the evaluator's studies of BOARDS, opened and recovered (trials a
    stopped run left behind) by this driver as the search does."""
    storage = open_storage(url)
    studies = {board: evaluator.load_study(storage, board, index) for index, board in enumerate(BOARDS)}
    for study in studies.values():
        recover_interrupted(study)
    return run_trials_on_ray(evaluator, url, studies, trials, resources, **options)


def _create_studies(storage_url: str, prefix: str) -> None:
    storage = open_storage(storage_url)
    for board in BOARDS:
        optuna.create_study(study_name=f"{prefix}:{board}", storage=storage, directions=["minimize", "minimize"])


@pytest.fixture()
def ray_can_pickle_this_module():
    """Ray workers cannot import this test module: ship its classes by value."""
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
def test_ctrl_c_cancels_running_trials_and_stops_the_local_cluster(tmp_path, ray_can_pickle_this_module):
    """A real SIGINT to the driver once both workers are inside a trial (runs before the shared cluster)."""
    import ray

    url = default_storage_url(tmp_path, several_processes=True)
    _create_studies(url, "int")
    started = tmp_path / "trials" / BOARDS[0]

    def interrupt_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(started.glob("*/started"))) < 2:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt_when_busy, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        run_toy(
            ToyEvaluator("int", str(tmp_path), seconds=60.0), url, 4, WorkerResources(workers=2),
            seed=0, run_dir=tmp_path,
        )
    watcher.join()
    assert not ray.is_initialized(), "the local cluster must be shut down"
    study = _study(url, "int")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert all(t.user_attrs["interrupted"] is True for t in study.trials)
    assert not list(started.glob("*")), "the cancelled trials' folders are removed"


JOIN_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import ray
import test_distributed as td
from mcunas.search.cluster import WorkerResources
ray.cloudpickle.register_pickle_by_value(td)
evaluator = td.ToyEvaluator("join", sys.argv[2], seconds=0.2)
result = td.run_toy(evaluator, sys.argv[3], 4, WorkerResources(workers=2), seed=0,
                    run_dir=sys.argv[2], ray_address=sys.argv[4])
print(json.dumps({"finished": sorted(result.finished["board-a"]), "connected": ray.is_initialized()}))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_joining_a_running_cluster_leaves_it_running(tmp_path):
    """`ray start --head` on loopback, a driver process joins it by address (token auth on)."""
    import psutil

    temp_dir = tempfile.mkdtemp(prefix="mcunas-head-", dir="/tmp")
    address = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = Path(sys.executable).parent / "ray"
    head = [str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={address.split(':')[1]}",
            "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=180)
        url = default_storage_url(tmp_path, several_processes=True)
        _create_studies(url, "join")
        driver = subprocess.run(
            [sys.executable, "-c", JOIN_DRIVER, str(Path(__file__).parent), str(tmp_path), url, address],
            env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=300,
        )
        assert driver.returncode == 0, driver.stderr[-3000:]
        summary = json.loads(driver.stdout.strip().splitlines()[-1])
        assert summary == {"finished": [0, 1, 2, 3], "connected": False}
        cluster = _processes_under(psutil, temp_dir)
        assert any("gcs_server" in " ".join(p.cmdline()) for p in cluster), "the joined cluster must keep running"
    finally:
        for process in _processes_under(psutil, temp_dir):
            process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _processes_under(psutil, temp_dir: str) -> list:
    """The Ray processes this test started: those whose command line names its unique temp dir,
    and their children (workers, agents)."""
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or ()):
            for member in [process, *process.children(recursive=True)]:
                found[member.pid] = member
    return list(found.values())


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """One local cluster (2 CPUs, loopback), started and stopped as ``run_trials_on_ray`` does
    when given no address; the tests share it to save the start-up time."""
    import ray

    temp_root = tempfile.mkdtemp(prefix="mcunas-test-", dir="/tmp")  # short: Ray's socket paths
    try:
        with cluster.ray_cluster(None, WorkerResources(workers=2), temp_root):
            assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
            yield
        assert not ray.is_initialized()
        assert any(Path(temp_root, "ray").glob("session_*")), "Ray's files go to <temp_root>/ray"
    finally:
        shutil.rmtree(temp_root, ignore_errors=True)


def test_worker_killed_mid_trial_is_failed_retried_and_not_double_counted(
    tmp_path, shared_cluster, ray_can_pickle_this_module
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    url = default_storage_url(run_dir, several_processes=True)
    _create_studies(url, "toy")
    evaluator = ToyEvaluator("toy", str(run_dir), kill_marker=str(run_dir / "killed"))
    trials = 6

    result = run_toy(
        evaluator, url, trials, WorkerResources(workers=2), seed=0, run_dir=run_dir
    )

    assert (run_dir / "killed").exists()
    assert result.worker_deaths == 1
    study = optuna.load_study(study_name="toy:board-a", storage=open_storage(url))
    by_state = {s: [t for t in study.trials if t.state == s] for s in optuna.trial.TrialState}
    complete = by_state[optuna.trial.TrialState.COMPLETE]
    failed = by_state[optuna.trial.TrialState.FAIL]
    assert len(complete) == trials
    assert not by_state[optuna.trial.TrialState.RUNNING] and not by_state[optuna.trial.TrialState.WAITING]
    assert sorted(result.finished["board-a"]) == sorted(t.number for t in complete)
    assert len({t.number for t in complete}) == trials
    # The dead trial: FAIL, never COMPLETE, its worker process really gone, its folder removed.
    assert len(failed) == 1
    dead = failed[0]
    assert dead.user_attrs["failure"].startswith("worker died: WorkerCrashedError")
    assert result.failed["board-a"] == [dead.number] and result.retried["board-a"] == [dead.number]
    with pytest.raises(ProcessLookupError):
        os.kill(dead.user_attrs["pid"], 0)
    assert not (run_dir / "trials" / "board-a" / str(dead.number)).exists()
    # Its candidate ran again as a new trial that completed, with the same parameters.
    retries = [t for t in complete if t.user_attrs.get("retry_of") == dead.number]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].user_attrs["attempt"] == 2
    # Workers sampled distinct candidates (per-trial sampler seeds), apart from the retry.
    assert len({t.params["x"] for t in complete}) == trials
    # Both workers ran trials.
    assert len({t.user_attrs["pid"] for t in complete}) >= 2


def _study(url: str, prefix: str) -> optuna.Study:
    return optuna.load_study(study_name=f"{prefix}:{BOARDS[0]}", storage=open_storage(url))


def _states(study: optuna.Study) -> dict[int, str]:
    return {t.number: t.state.name for t in study.trials}


def test_error_in_evaluation_propagates_then_resume_retries_the_cancelled(
    tmp_path, shared_cluster, ray_can_pickle_this_module
):
    import ray

    url = default_storage_url(tmp_path, several_processes=True)
    _create_studies(url, "err")
    broken = ToyEvaluator("err", str(tmp_path), raise_on=1, seconds=2.0)
    with pytest.raises(ValueError, match="trial 1 is broken"):
        run_toy(broken, url, 4, WorkerResources(workers=2), seed=0, run_dir=tmp_path)
    assert ray.is_initialized(), "a cluster this call did not start must be left running"
    study = _study(url, "err")
    states = _states(study)
    assert "RUNNING" not in states.values()
    assert states[1] == "FAIL"
    assert study.trials[1].user_attrs["failure"] == "error: ValueError: trial 1 is broken"
    assert "interrupted" not in study.trials[1].user_attrs
    # Trial 0 ran beside it: finished first, or cancelled and marked for retry.
    assert states[0] == "COMPLETE" or study.trials[0].user_attrs["interrupted"] is True
    cancelled = [t for t in study.trials if t.user_attrs.get("interrupted")]

    result = run_toy(
        ToyEvaluator("err", str(tmp_path), seconds=0.2), url, 4, WorkerResources(workers=2),
        seed=0, run_dir=tmp_path,
    )
    study = _study(url, "err")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and "RUNNING" not in _states(study).values()
    assert len(result.finished["board-a"]) == 4 - (states[0] == "COMPLETE")
    for trial in cancelled:  # the resume enqueued the cancelled candidates again
        assert [t.params for t in complete if t.user_attrs.get("retry_of") == trial.number] == [trial.params]
    assert not any(t.user_attrs.get("retry_of") == 1 for t in study.trials), "a raising trial is not retried"


def test_repeated_worker_deaths_stop_the_run(tmp_path, shared_cluster, ray_can_pickle_this_module):
    url = default_storage_url(tmp_path, several_processes=True)
    _create_studies(url, "dies")
    always_dies = ToyEvaluator("dies", str(tmp_path), kill_marker="", seconds=0.2)
    with pytest.raises(McunasError, match="Ray workers died 2 times"):
        run_toy(
            always_dies, url, 3, WorkerResources(workers=1), seed=0, run_dir=tmp_path, max_worker_deaths=1
        )
    study = _study(url, "dies")
    assert list(_states(study).values()) == ["FAIL", "FAIL", "WAITING"]
    assert study.trials[1].user_attrs["retry_of"] == 0 and study.trials[1].params == study.trials[0].params
    assert study.trials[2].user_attrs == {"retry_of": 1, "attempt": 3}


def test_reservation_larger_than_the_cluster_is_refused(tmp_path, shared_cluster):
    url = default_storage_url(tmp_path, several_processes=True)
    _create_studies(url, "big")
    evaluator = ToyEvaluator("big", str(tmp_path))
    with pytest.raises(ConfigError, match=r"search\.cpus_per_worker: 8 CPUs per worker, the Ray cluster has 2"):
        run_toy(evaluator, url, 2, WorkerResources(2, cpus_per_worker=8), seed=0, run_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"search\.gpus_per_worker"):
        run_toy(evaluator, url, 2, WorkerResources(2, gpus_per_worker=1), seed=0, run_dir=tmp_path)
    assert _study(url, "big").trials == []


def test_storage_errors_name_the_config_key_and_hide_passwords(tmp_path):
    with pytest.raises(ConfigError, match=r"search\.storage: folder of the journal file .* does not exist"):
        open_storage(str(tmp_path / "missing" / "journal.log"))
    with pytest.raises(ConfigError) as error:
        open_storage("postgresql+psycopg2://mcunas:s3cret@127.0.0.1:1/mcunas")
    assert "search.storage" in str(error.value) and "s3cret" not in str(error.value)
    with pytest.raises(ConfigError, match=r"search\.storage: cannot open"):
        open_storage("nosuchdialect://host/db")


def test_worker_resources_are_validated():
    with pytest.raises(ConfigError, match=r"search\.workers"):
        WorkerResources(workers=0)
    with pytest.raises(ConfigError, match=r"search\.cpus_per_worker"):
        WorkerResources(workers=2, cpus_per_worker=0)
    assert WorkerResources(workers=2, cpus_per_worker=2.5).torch_threads == 2
    assert WorkerResources(workers=2, cpus_per_worker=0.5).torch_threads == 1


def test_nodes_that_do_not_see_a_file_are_named(tmp_path, shared_cluster):
    import ray

    marker = tmp_path / "marker"
    marker.write_text("token-1")
    assert cluster.nodes_not_seeing(marker, "token-1") == []
    local = [node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]]
    assert local == ["127.0.0.1"], "the local test cluster listens on loopback only"
    assert cluster.nodes_not_seeing(marker, "token-2") == local
    assert cluster.nodes_not_seeing(tmp_path / "absent", "token-1") == local


TINY_SEARCH = """
name: tiny
seed: 0
dataset: {name: synthetic, resolution: 8, max_train_samples: 256, max_test_samples: 64}
space: {name: mobilenetv2}
boards: [arduino-nano-33-ble-sense]
objectives: [accuracy, latency_ms]
search: {sampler: random, trials: 4}
training: {epochs: 1, batch_size: 64}
distillation: {enabled: true, teacher_epochs: 1}
final: {epochs: 1, max_models: 1}
export: {enabled: false}
report: {enabled: true}
"""


def _form(run_dir: Path) -> set[str]:
    """Relative paths of a run directory, trial numbers as N, without storage and lock files."""
    skip = {"study.db", "journal.log", ".lock"}
    return {
        "/".join("N" if part.isdigit() else part for part in path.relative_to(run_dir).parts)
        for path in run_dir.rglob("*")
        if path.is_file() and path.name not in skip and path.relative_to(run_dir).parts[0] != "ray"
    }


def _kill_a_busy_worker(run_dir: Path, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL one Ray worker of this process tree while it trains (arch.json, no metrics.json)."""
    import psutil

    trials = run_dir / "trials" / "arduino-nano-33-ble-sense"
    while not stop.is_set():
        training = [d for d in trials.glob("*") if (d / "arch.json").exists() and not (d / "metrics.json").exists()]
        busy = [
            p for p in psutil.Process().children(recursive=True)
            if training and p.is_running() and "ray::evaluate_trial_task" in " ".join(p.cmdline())
        ]
        # Kill only when every busy worker is training (has sampled its parameters): with two
        # workers, one may still be sampling while the other trains.
        if busy and len(training) >= len(busy):
            busy[0].kill()
            killed.append(busy[0].pid)
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_search_on_ray_survives_a_killed_worker_and_keeps_the_run_directory_form(tmp_path):
    """The real search (training, distillation, finalization, report) sequentially and on Ray
    with 2 workers, one of which is SIGKILLed from outside while it trains."""
    from mcunas.config import load_experiment
    from mcunas.search import run_search

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_SEARCH)
    experiment = load_experiment(config)
    sequential = run_search(experiment, tmp_path / "seq")

    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_busy_worker, args=(tmp_path / "ray", killed, stop), daemon=True)
    killer.start()
    try:
        on_ray = run_search(experiment, tmp_path / "ray", workers=2)
    finally:
        stop.set()
        killer.join()

    assert len(killed) == 1
    assert on_ray.trials_finished == sequential.trials_finished == {"arduino-nano-33-ble-sense": 4}
    study = optuna.load_study(study_name="tiny:arduino-nano-33-ble-sense", storage=open_storage(on_ray.storage_url))
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(failed) == 1 and failed[0].user_attrs["failure"].startswith("worker died")
    assert [t.params for t in complete if t.user_attrs.get("retry_of") == failed[0].number] == [failed[0].params]
    assert len(complete) == 4 and all(t.user_attrs["distilled"] for t in complete if t.user_attrs["feasible"])
    assert on_ray.storage_url.endswith("journal.log")
    assert _form(tmp_path / "ray") == _form(tmp_path / "seq")
