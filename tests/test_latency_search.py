"""Searches on a board whose runtime has no latency profile run to the end; latency objectives there
are refused up front with the runtimes that have one."""

from __future__ import annotations

import logging

import optuna
import pytest
from optuna.trial import TrialState

from mcunas.config import parse_experiment
from mcunas.errors import ConfigError
from mcunas.search import run_search

ESP32 = "esp32-s3-devkitc-1"


def esp32_config(**changes) -> dict:
    config = {
        "name": "esp",
        "seed": 0,
        "dataset": {"name": "synthetic", "resolution": 8, "max_train_samples": 200, "max_test_samples": 50},
        "space": {"name": "mobilenetv2", "stem_channels": [4], "kernel_sizes": [3], "expand_ratios": [1],
                  "stages": [{"stride": 2, "channels": [8], "depth": [1, 1]}]},
        "boards": [ESP32],
        "objectives": ["accuracy", "sram_bytes"],
        "search": {"trials": 2},
        "training": {"epochs": 1, "batch_size": 32},
        "distillation": {"enabled": False},
        "final": {"epochs": 1, "max_models": 1},
        "export": {"enabled": False},
        "report": {"enabled": False},
    }
    config.update(changes)
    return config


def test_esp32_search_without_latency_objective_runs_to_the_end(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    caplog.set_level(logging.INFO, logger="mcunas.search")
    result = run_search(parse_experiment(esp32_config()), tmp_path)
    assert result.trials_finished == {ESP32: 2} and len(result.finals[ESP32]) == 1
    study = optuna.load_study(study_name=f"esp:{ESP32}", storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:  # the default runtime (CMSIS-NN) has no Xtensa profile: no latency, no crash
        assert trial.user_attrs["estimates"]["latency_ms"] is None
        assert trial.values[1] == trial.user_attrs["estimates"]["sram_bytes"]
    assert "latency n/a" in caplog.text


def test_latency_objective_without_a_profile_for_the_runtime_is_refused(tmp_path) -> None:
    experiment = parse_experiment(esp32_config(objectives=["accuracy", "latency_ms"]))
    with pytest.raises(ConfigError, match=r"no latency profile for core 'xtensa-lx7' with runtime 'tflm-cmsis-nn'.*"
                                          r"tflm-esp-nn"):
        run_search(experiment, tmp_path)
