"""The driver of a real `mcunas search --workers 2` SIGKILLed mid-search, then the same command rerun.

For the journal file (the default storage on Ray) and for PostgreSQL (a URL with the test role's
password in the config): the killed driver's Ray processes go away with it, the rerun fails the
trials it left running, removes their folders, runs their candidates again and completes the
budget, each trial once; finalization and the report follow. The PostgreSQL case also checks
that the password appears in no file of the run directory and in none of the output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from mcunas.rundir.storage import open_storage

BOARD = "arduino-nano-33-ble-sense"
TRIALS = 6

CONFIG = """
name: killed
seed: 0
dataset: {{name: synthetic, resolution: 8, max_train_samples: 256, max_test_samples: 64}}
space: {{name: mobilenetv2}}
boards: [{board}]
objectives: [accuracy, latency_ms]
search: {{sampler: random, trials: {trials}, workers: 2{storage}}}
training: {{epochs: 2, batch_size: 32}}
distillation: {{enabled: false}}
final: {{epochs: 1, max_models: 1}}
export: {{enabled: false}}
report: {{enabled: true}}
"""


def _search(config: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "mcunas.cli", "search", str(config), "--out", str(run_dir)]


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}


def _mid_search(run_dir: Path) -> bool:
    """At least one trial finished and another one training (arch.json, no metrics.json)."""
    folders = list((run_dir / "trials" / BOARD).glob("*"))
    finished = [f for f in folders if (f / "metrics.json").exists()]
    training = [f for f in folders if (f / "arch.json").exists() and not (f / "metrics.json").exists()]
    return bool(finished) and bool(training)


# Ray's node agents notice a dead raylet only about a minute later; everything else must go at once.
_SLOW_TO_EXIT = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _kill_mid_search(config: Path, run_dir: Path, log: Path) -> list:
    """Start the search, SIGKILL its driver mid-search, wait until its cluster (GCS, raylet,
    workers) is gone; return the processes of the node agents, which leave later."""
    import psutil

    with open(log, "wb") as output:
        driver = subprocess.Popen(_search(config, run_dir), env=_env(), stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while not _mid_search(run_dir):
            assert driver.poll() is None, f"the search ended before it could be killed:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no trial finished within 240 s"
            time.sleep(0.05)
        children = psutil.Process(driver.pid).children(recursive=True)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    agents = [p for p in children if _name(p) in _SLOW_TO_EXIT]
    _, alive = psutil.wait_procs([p for p in children if p not in agents], timeout=30)
    assert not alive, f"the killed driver left Ray processes running: {[_name(p) for p in alive]}"
    return agents


def _name(process) -> str:
    import psutil

    try:
        return process.name()
    except psutil.NoSuchProcess:
        return ""


def _check_resumed_run(run_dir: Path, storage_url: str) -> None:
    study = optuna.load_study(study_name=f"killed:{BOARD}", storage=open_storage(storage_url))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(complete) == TRIALS and not [t for t in study.trials if t.state.name in ("RUNNING", "WAITING")]
    assert failed, "the killed run left no trial running"
    for trial in failed:
        assert not (run_dir / "trials" / BOARD / str(trial.number)).exists(), "a killed trial's folder is left"
        if trial.params:  # sampled (maybe not all of its parameters: killed while sampling)
            [again] = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
            assert again.state.name == "COMPLETE"
            assert {name: again.params[name] for name in trial.params} == trial.params
    for trial in complete:
        assert json.loads((run_dir / "trials" / BOARD / str(trial.number) / "metrics.json").read_text())
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == TRIALS, "a candidate completed twice"
    assert (run_dir / "report" / "report.html").is_file()
    assert [p for p in (run_dir / "final" / BOARD).iterdir()], "finalization ran"


def _run_killed_then_resumed(tmp_path: Path, storage: str, run_dir: Path | None = None) -> tuple[Path, str]:
    config = tmp_path / "killed.yaml"
    config.write_text(CONFIG.format(board=BOARD, trials=TRIALS, storage=storage))
    run_dir = run_dir or tmp_path / "run"
    agents = _kill_mid_search(config, run_dir, tmp_path / "first.log")
    rerun = subprocess.run(_search(config, run_dir), env=_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "was left running by an earlier process" in rerun.stderr
    import psutil

    _, alive = psutil.wait_procs(agents, timeout=120)
    assert not alive, f"Ray agents of the killed driver still run: {[_name(p) for p in alive]}"
    return run_dir, (tmp_path / "first.log").read_text() + rerun.stdout + rerun.stderr


@pytest.mark.slow
def test_killed_driver_resumes_from_the_journal_file(tmp_path):
    run_dir, _ = _run_killed_then_resumed(tmp_path, "")
    journal = run_dir / "journal.log"
    _check_resumed_run(run_dir, str(journal))
    lines = journal.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1]), "the journal is whole"


@pytest.fixture()
def short_dir():
    """A folder with a short path: a run directory in it keeps Ray's files (logs) in RUN_DIR/ray."""
    folder = Path(tempfile.mkdtemp(prefix="mcunas-pg-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_killed_driver_resumes_from_postgresql_and_the_password_is_written_nowhere(
    tmp_path, short_dir, postgres_server, postgres_url
):
    run_dir, output = _run_killed_then_resumed(tmp_path, f", storage: '{postgres_url}'", short_dir / "run")
    _check_resumed_run(run_dir, postgres_url)
    password = postgres_server.password.encode()
    assert password and password in postgres_url.encode()
    assert any((run_dir / "ray").glob("session_*/logs/*")), "Ray's logs are in the run directory, and searched"
    leaks = [str(p) for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink() and password in p.read_bytes()]
    assert leaks == [], f"the password is written in {leaks}"
    assert password.decode() not in output
    assert "***" in (run_dir / "config.yaml").read_text()
    assert json.loads((run_dir / "run.json").read_text())["storage"] == postgres_url.replace(
        f":{postgres_server.password}@", ":***@"
    )
