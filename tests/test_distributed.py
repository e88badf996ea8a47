"""Distributed search on real Ray clusters, with real worker deaths mid-trial.

Most cases use a cheap real Optuna objective (two sampled parameters, a short sleep standing in
for training) on one shared local cluster, so that the machinery is tested in seconds: a worker
SIGKILLs its own process in the middle of a trial, an evaluation raises, workers keep dying.
The slow cases send a real SIGINT to the driver, join a cluster started with ``ray start
--head``, kill a whole second Ray node (its raylet and workers) mid-trial, and run the real search
(training, distillation, finalization, report) sequentially and on Ray while a worker is
SIGKILLed from outside during training. The objective and helpers are in tests/toys.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import optuna
import pytest

from mcunas.errors import ConfigError, McunasError
from mcunas.rundir.storage import default_storage_url, open_storage
from mcunas.search import cluster
from mcunas.search.cluster import WorkerResources
from toys import (BOARDS, ToyEvaluator, assert_each_trial_once, create_studies, free_port, processes_under, ray_cli,
                  run_toy)
from toys import load_toy_study as _study

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.slow
def test_ctrl_c_cancels_running_trials_and_stops_the_local_cluster(tmp_path, ray_can_pickle_toys):
    """A real SIGINT to the driver once both workers are inside a trial (runs before the shared cluster)."""
    import ray

    url = default_storage_url(tmp_path, several_processes=True)
    create_studies(url, "int")
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


# A driver process that joins the cluster at ADDRESS: TESTS_DIR RUN_DIR URL ADDRESS PREFIX TRIALS SECONDS.
JOIN_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import ray
import toys as td
from mcunas.search.cluster import WorkerResources
ray.cloudpickle.register_pickle_by_value(td)
evaluator = td.ToyEvaluator(sys.argv[5], sys.argv[2], seconds=float(sys.argv[7]))
result = td.run_toy(evaluator, sys.argv[3], int(sys.argv[6]), WorkerResources(workers=2), seed=0,
                    run_dir=sys.argv[2], ray_address=sys.argv[4])
print(json.dumps({"finished": sorted(result.finished["board-a"]), "connected": ray.is_initialized(),
                  "worker_deaths": result.worker_deaths}))
"""


def _join(tmp_path: Path, url: str, address: str, prefix: str, trials: int, seconds: float, env: dict):
    return subprocess.run(
        [sys.executable, "-c", JOIN_DRIVER, str(Path(__file__).parent), str(tmp_path), url, address, prefix,
         str(trials), str(seconds)],
        env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_joining_a_running_cluster_leaves_it_running(tmp_path):
    """`ray start --head` on loopback, a driver process joins it by address (token auth on)."""
    import psutil

    temp_dir = tempfile.mkdtemp(prefix="mcunas-head-", dir="/tmp")
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    head = [*ray_cli(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={address.split(':')[1]}",
            "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=180)
        url = default_storage_url(tmp_path, several_processes=True)
        create_studies(url, "join")
        driver = _join(tmp_path, url, address, "join", 4, 0.2, env)
        assert driver.returncode == 0, driver.stderr[-3000:]
        summary = json.loads(driver.stdout.strip().splitlines()[-1])
        assert summary == {"finished": [0, 1, 2, 3], "connected": False, "worker_deaths": 0}
        cluster = processes_under(psutil, temp_dir)
        assert any("gcs_server" in " ".join(p.cmdline()) for p in cluster), "the joined cluster must keep running"
    finally:
        for process in processes_under(psutil, temp_dir):
            process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _kill_node_when_busy(psutil, run_dir: Path, node_ip: str, temp_dir: str, killed: list[int],
                         stop: threading.Event) -> None:
    """SIGKILL the raylet of the node at ``node_ip`` (and its workers) once a trial runs there."""
    trials = run_dir / "trials" / BOARDS[0]
    while not stop.is_set():
        busy = [f for f in trials.glob("*/started") if json.loads(f.read_text() or "{}").get("node_ip") == node_ip
                and not (f.parent / "done").exists()]
        raylets = [p for p in processes_under(psutil, temp_dir)
                   if "raylet" in p.name() and f"--node_ip_address={node_ip}" in " ".join(p.cmdline())]
        if busy and raylets:
            for raylet in raylets:
                members = [raylet, *raylet.children(recursive=True)]
                for member in members:
                    member.kill()
                killed += [m.pid for m in members]
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_ray_node_killed_mid_trial_loses_no_trial(tmp_path):
    """Two raylets on this machine: the head (127.0.0.2, 1 CPU) and a second node joined with
    `ray start --address` (127.0.0.3, 1 CPU, its own `node_b` resource), so that of the two trials
    in flight one runs on each; the second node is killed (raylet and workers) while its trial
    runs. That trial fails with the node, its candidate completes on the head, nothing is lost.

    Loopback addresses other than 127.0.0.1: `ray start --address` needs Ray's multi-node mode,
    which would replace 127.0.0.1 by the machine's own network address.
    """
    import psutil

    temp_dir = tempfile.mkdtemp(prefix="mcunas-nodes-", dir="/tmp")
    port = free_port()
    address = f"127.0.0.2:{port}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token"}
    head = [*ray_cli(), "start", "--head", "--node-ip-address=127.0.0.2", f"--port={port}", "--num-cpus=1",
            "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    second = [*ray_cli(), "start", f"--address={address}", "--node-ip-address=127.0.0.3", "--num-cpus=1",
              '--resources={"node_b": 1}', "--disable-usage-stats"]
    killed: list[int] = []
    stop = threading.Event()
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=180)
        subprocess.run(second, env=env, check=True, capture_output=True, timeout=180)
        url = default_storage_url(tmp_path, several_processes=True)
        create_studies(url, "nodes")
        killer = threading.Thread(target=_kill_node_when_busy,
                                  args=(psutil, tmp_path, "127.0.0.3", temp_dir, killed, stop), daemon=True)
        killer.start()
        driver = _join(tmp_path, url, address, "nodes", 4, 2.0, env)
        stop.set()
        killer.join()
        assert driver.returncode == 0, driver.stderr[-3000:]
        summary = json.loads(driver.stdout.strip().splitlines()[-1])
    finally:
        stop.set()
        for process in processes_under(psutil, temp_dir):
            process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert killed, "the second node never ran a trial"
    assert summary["worker_deaths"] == 1
    study = _study(url, "nodes")
    assert_each_trial_once(study, 4, tmp_path, summary["finished"])
    [lost] = [t for t in study.trials if t.state.name == "FAIL"]
    assert lost.user_attrs["failure"].startswith("worker died: "), lost.user_attrs["failure"]


def test_worker_killed_mid_trial_is_failed_retried_and_not_double_counted(
    tmp_path, shared_cluster, ray_can_pickle_toys
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    url = default_storage_url(run_dir, several_processes=True)
    create_studies(url, "toy")
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


def _states(study: optuna.Study) -> dict[int, str]:
    return {t.number: t.state.name for t in study.trials}


def test_error_in_evaluation_propagates_then_resume_retries_the_cancelled(
    tmp_path, shared_cluster, ray_can_pickle_toys
):
    import ray

    url = default_storage_url(tmp_path, several_processes=True)
    create_studies(url, "err")
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


def test_repeated_worker_deaths_stop_the_run(tmp_path, shared_cluster, ray_can_pickle_toys):
    url = default_storage_url(tmp_path, several_processes=True)
    create_studies(url, "dies")
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
    create_studies(url, "big")
    evaluator = ToyEvaluator("big", str(tmp_path))
    with pytest.raises(ConfigError, match=r"search\.cpus_per_worker: 8 CPUs per worker, the Ray cluster has 2"):
        run_toy(evaluator, url, 2, WorkerResources(2, cpus_per_worker=8), seed=0, run_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"search\.gpus_per_worker"):
        run_toy(evaluator, url, 2, WorkerResources(2, gpus_per_worker=1), seed=0, run_dir=tmp_path)
    assert _study(url, "big").trials == []



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
