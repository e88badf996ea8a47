"""The Optuna-driven search end to end on small real runs: synthetic data at 8x8 pixels, the real
estimators, SQLite storage, PyTorch training, resume, constraints and finalization."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from mcunas.cli import main as cli_main
from mcunas.config import PRUNERS, SAMPLERS, parse_experiment
from mcunas.errors import ConfigError, RunDirError
from mcunas.estimators import estimate
from mcunas.run import run_experiment
from mcunas.search import run_search
from mcunas.search.finalize import pareto_front, spread
from mcunas.search.lock import file_lock
from mcunas.search.samplers import SAMPLER_FACTORIES, make_pruner, make_sampler
from mcunas.spaces import arch_from_dict, get_space



@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """Tiny models on a shared machine: one intra-op thread (run_search honours OMP_NUM_THREADS)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

BOARD = "arduino-nano-33-ble-sense"
TINY_SPACE = {
    "name": "mobilenetv2",
    "stem_channels": [4, 8],
    "stages": [{"stride": 2, "channels": [8], "depth": [1, 1]}, {"stride": 2, "channels": [8, 16], "depth": [1, 2]}],
    "kernel_sizes": [3, 5],
    "expand_ratios": [1, 3],
}


def tiny_config(**sections) -> dict:
    config = {
        "name": "tiny",
        "seed": 0,
        "dataset": {"name": "synthetic", "resolution": 8, "max_train_samples": 300, "max_test_samples": 100},
        "space": TINY_SPACE,
        "boards": [BOARD],
        "objectives": ["accuracy", "latency_ms"],
        "search": {"trials": 3},
        "training": {"epochs": 1, "batch_size": 32},
        "distillation": {"enabled": False},
        "final": {"epochs": 1, "max_models": 1},
        "export": {"enabled": False},
        "report": {"enabled": False},
    }
    for key, value in sections.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def tiny(**sections):
    return parse_experiment(tiny_config(**sections))


def load_study(run_dir: Path, board: str = BOARD, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=f"{name}:{board}", storage=f"sqlite:///{run_dir / 'study.db'}")


def complete(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def test_small_search_with_distillation_records_everything(tmp_path):
    experiment = tiny(distillation={"enabled": True, "teacher_epochs": 1}, search={"trials": 3})
    result = run_search(experiment, tmp_path)
    assert result.trials_run == {BOARD: 3} and result.trials_finished == {BOARD: 3}
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "study.db").is_file()
    run = yaml.safe_load((tmp_path / "run.json").read_text())
    assert run["studies"] == {BOARD: f"tiny:{BOARD}"} and run["storage"].startswith("sqlite:///")
    assert {p.name for p in (tmp_path / "teacher").iterdir()} >= {"arch.json", "weights.pt", "metrics.json"}

    trials = complete(load_study(tmp_path))
    assert len(trials) == 3
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["feasible"] is True and attrs["violations"] == []
        assert attrs["board"] == BOARD and attrs["distilled"] is True and attrs["epochs"] == 1
        assert 0.0 <= attrs["accuracy_val"] <= 1.0 and attrs["train_seconds"] > 0
        assert attrs["arch"]["space"] == "mobilenetv2" and attrs["block_string"].startswith("r8_")
        assert trial.values == [attrs["accuracy_val"], attrs["estimates"]["latency_ms"]]
        # the trial's fast estimate is the reference Cost of its graph
        arch = arch_from_dict(attrs["arch"])
        assert attrs["estimates"] == estimate(get_space(arch.space).graph(arch), BOARD,
                                              experiment.runtime, **experiment.constraints.budget_arguments(),
                                              front_end=experiment.dataset.front_end).to_dict()
        assert set(trial.constraints) == {"sram", "flash"} and max(trial.constraints.values()) <= 0
        folder = tmp_path / "trials" / BOARD / str(trial.number)
        assert {p.name for p in folder.iterdir()} >= {"arch.json", "weights.pt", "metrics.json"}

    (final,) = result.finals[BOARD]
    assert final.trial in {t.number for t in pareto_front(trials, experiment.directions())}
    assert (final.final_dir / "weights.pt").is_file() and 0.0 <= final.metrics["accuracy_test"] <= 1.0
    assert final.export_dir is None


def test_rerun_resumes_without_repeating_trials(tmp_path):
    run_search(tiny(), tmp_path, trials=2, finalize=False)
    before = {t.number: (t.params, t.datetime_complete) for t in complete(load_study(tmp_path))}
    assert len(before) == 2
    result = run_search(tiny(), tmp_path, trials=4, finalize=False)
    assert result.trials_run == {BOARD: 2}
    after = complete(load_study(tmp_path))
    assert len(after) == 4
    assert {t.number: (t.params, t.datetime_complete) for t in after if t.number in before} == before
    assert run_search(tiny(), tmp_path, trials=4, finalize=False).trials_run == {BOARD: 0}


def test_trial_left_running_by_a_crash_is_failed_and_retried(tmp_path):
    run_search(tiny(), tmp_path, trials=1, finalize=False)
    # A crash mid-trial: the trial was asked and sampled in the real storage but never finished.
    study = load_study(tmp_path)
    crashed = study.ask()
    crashed.suggest_categorical("stem_channels", [4, 8])
    crashed.suggest_categorical("stage1_channels", [8, 16])
    assert study.trials[crashed.number].state == TrialState.RUNNING

    run_search(tiny(), tmp_path, trials=2, finalize=False)
    trials = load_study(tmp_path).get_trials(deepcopy=False)
    assert trials[crashed.number].state == TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == crashed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params["stem_channels"] == crashed.params["stem_channels"]
    assert retry[0].params["stage1_channels"] == crashed.params["stage1_channels"]
    assert len(complete(load_study(tmp_path))) == 2


class _CtrlCOnTrial(logging.Handler):
    """Delivers a real SIGINT to this process when the log line of trial ``number`` is emitted."""

    def __init__(self, number: int):
        super().__init__()
        self.prefix = f"trial {number} "

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_leaves_a_resumable_study(tmp_path):
    logger = logging.getLogger("mcunas.search")
    handler = _CtrlCOnTrial(1)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_search(tiny(), tmp_path, trials=3, finalize=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    trials = load_study(tmp_path).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["interrupted"] is True

    result = run_search(tiny(), tmp_path, trials=3, finalize=False)
    assert result.trials_run == {BOARD: 2}
    trials = load_study(tmp_path).get_trials(deepcopy=False)
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == trials[1].params
    assert len(complete(load_study(tmp_path))) == 3


def test_infeasible_candidates_are_rejected_before_training(tmp_path):
    board_file = tmp_path / "tiny-board.yaml"
    board_file.write_text(yaml.safe_dump({
        "name": "tiny-board", "display_name": "Tiny", "mcu": "test", "core": "cortex-m4", "clock_mhz": 64,
        "sram_bytes": 1100, "flash_bytes": 1048576, "sram_reserve_bytes": 1000, "flash_reserve_bytes": 0,
    }))
    experiment = parse_experiment({**tiny_config(boards=[str(board_file)], search={"trials": 4}),
                                   "constraints": {"max_param_bytes": 100}})
    result = run_search(experiment, tmp_path / "run")
    trials = load_study(tmp_path / "run", "tiny-board").get_trials(deepcopy=False)
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["feasible"] is False and any("SRAM" in v for v in attrs["violations"])
        assert any(v.startswith("parameters") for v in attrs["violations"])
        arch = arch_from_dict(attrs["arch"])  # the trial's fast estimate is the reference Cost of its graph
        assert attrs["estimates"] == estimate(get_space(arch.space).graph(arch), board_file, experiment.runtime,
                                              **experiment.constraints.budget_arguments()).to_dict()
        assert attrs.get("train_seconds", 0) == 0 and "accuracy_val" not in attrs
        assert trial.constraints["sram"] > 0
        assert trial.values[0] == 0.0  # worst-case accuracy
        assert trial.duration.total_seconds() < 5  # estimates only
        assert not (tmp_path / "run" / "trials" / "tiny-board" / str(trial.number) / "weights.pt").exists()
    assert result.finals == {"tiny-board": []}


def test_single_objective_search_reports_epochs_to_the_pruner(tmp_path):
    experiment = tiny(objectives=["accuracy"], search={"sampler": "auto", "pruner": "successive_halving"},
                      training={"epochs": 2})
    result = run_search(experiment, tmp_path, trials=3, finalize=False)
    study = load_study(tmp_path)
    assert isinstance(study.sampler, optuna.samplers.TPESampler)  # auto: TPE for one objective
    assert result.trials_finished == {BOARD: 3}
    for trial in study.get_trials(deepcopy=False):
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert trial.intermediate_values and set(trial.intermediate_values) <= {0, 1}
        if trial.state == TrialState.COMPLETE:
            assert trial.intermediate_values == {0: trial.user_attrs["history"][0], 1: trial.value}


def test_pruning_a_cost_objective_is_a_config_error(tmp_path):
    experiment = tiny(objectives=["latency_ms"], search={"pruner": "median"})
    with pytest.raises(ConfigError, match=r"search\.pruner.*objectives: \[accuracy\]"):
        run_search(experiment, tmp_path, trials=1, finalize=False)
    assert not (tmp_path / "config.yaml").exists()  # refused before the run directory was touched


def test_rerun_with_a_different_config_is_refused(tmp_path):
    run_search(tiny(), tmp_path, trials=1, finalize=False)
    with pytest.raises(RunDirError, match=r"training\.lr"):
        run_search(tiny(training={"lr": 0.2}), tmp_path, trials=1, finalize=False)
    with file_lock(tmp_path / ".lock"), pytest.raises(RunDirError, match="another mcunas search is running"):
        run_search(tiny(), tmp_path, trials=2, finalize=False)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunDirError, match="not a directory"):
        run_search(tiny(), tmp_path / "a-file", trials=1)
    (tmp_path / "run.json").write_text("{ truncated")
    with pytest.raises(RunDirError, match=r"run\.json: not valid JSON"):
        run_search(tiny(), tmp_path, trials=2, finalize=False)


def test_same_arch_is_trained_once_across_boards(tmp_path):
    # One candidate only: every trial of both boards samples the same architecture.
    space = {**TINY_SPACE, "stem_channels": [4], "stages": [{"stride": 2, "channels": [8], "depth": [1, 1]}],
             "kernel_sizes": [3], "expand_ratios": [1]}
    experiment = tiny(space=space, boards=[BOARD, "nucleo-f446re"], search={"trials": 2})
    run_search(experiment, tmp_path, finalize=False)
    trials = complete(load_study(tmp_path)) + complete(load_study(tmp_path, "nucleo-f446re"))
    trained = [t for t in trials if "cached_from" not in t.user_attrs]
    assert len(trials) == 4 and len(trained) == 1
    assert {t.user_attrs["accuracy_val"] for t in trials} == {trained[0].user_attrs["accuracy_val"]}


def test_searched_resolution_other_than_the_datasets_gets_its_own_data(tmp_path):
    # dataset.resolution is 8; the space only offers 12: trials train (and distill) on 12 px data.
    experiment = tiny(space={"resolutions": [12]}, distillation={"enabled": True, "teacher_epochs": 1})
    run_search(experiment, tmp_path, trials=2, finalize=False)
    trials = complete(load_study(tmp_path))
    assert [t.user_attrs["arch"]["resolution"] for t in trials] == [12, 12]
    assert all(t.user_attrs["block_string"].startswith("r12_") and t.user_attrs["train_seconds"] > 0 for t in trials)


def _frozen(number: int, accuracy: float, latency_ms: float, feasible: bool = True):
    trial = create_trial(values=[accuracy, latency_ms], user_attrs={"feasible": feasible, "arch_key": str(number)},
                         params={"x": float(number)}, distributions={"x": FloatDistribution(0, 100)})
    trial.number = number
    return trial


def test_pareto_front_and_spread():
    trials = [_frozen(0, 0.9, 10.0), _frozen(1, 0.8, 5.0), _frozen(2, 0.7, 6.0), _frozen(3, 0.95, 20.0),
              _frozen(4, 0.6, 1.0), _frozen(5, 0.99, 0.5, feasible=False), _frozen(6, 0.85, 7.0)]
    front = pareto_front(trials, ["maximize", "minimize"])
    assert [t.number for t in front] == [3, 0, 6, 1, 4]  # best accuracy first; 2 dominated, 5 infeasible
    assert [t.number for t in spread(front, 3)] == [3, 6, 4]
    assert [t.number for t in spread(front, 1)] == [3]
    assert spread(front, 9) == front


def test_sampler_and_pruner_tables_cover_the_config_names():
    assert set(SAMPLER_FACTORIES) == set(SAMPLERS) - {"auto"}
    for name in PRUNERS:
        make_pruner(name, epochs=3, objectives=["accuracy"])


@pytest.mark.parametrize("name", [n for n in SAMPLER_FACTORIES if n != "cmaes"])
def test_samplers_are_seeded_and_reproducible(name):
    def run(seed: int) -> list:
        sampler = make_sampler(name, seed=seed, n_objectives=2, n_trials=8)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(lambda t: (t.suggest_int("a", 0, 9), t.suggest_categorical("b", [1, 2, 3])), n_trials=8)
        return [t.params for t in study.trials]

    assert run(3) == run(3)


def test_sampler_without_its_package_is_a_config_error():
    try:
        import cmaes  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="search.sampler"):
            make_sampler("cmaes", seed=0, n_objectives=1, n_trials=4)
    else:
        assert make_sampler("cmaes", seed=0, n_objectives=1, n_trials=4) is not None


def test_cli_search_and_light_import(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    assert cli_main(["search", str(config), "--out", str(tmp_path / "run"), "--trials", "1", "--no-finalize"]) == 0
    assert f"tiny:{BOARD}: 1 trials finished" in capsys.readouterr().out
    assert cli_main(["search", str(config), "--out", str(tmp_path / "run"), "--trials", "0"]) == 2
    code = "import sys, mcunas.search.command; print(sorted({'torch', 'optuna', 'tensorflow', 'ray'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_search_exports_and_reports(tmp_path):
    experiment = tiny(search={"trials": 3}, export={"enabled": True, "calibration_samples": 32},
                      report={"enabled": True}, dataset={"resolution": 16, "max_train_samples": 300})
    outcome = run_experiment(experiment, tmp_path)
    (final,) = outcome.search.finals[BOARD]
    assert (final.export_dir / "model.tflite").is_file()
    validation = yaml.safe_load((final.export_dir / "validation.json").read_text())
    assert validation["arena_bytes_measured"] > 0
    assert outcome.report is not None and outcome.report.is_file()
