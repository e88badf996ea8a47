"""Keyword spotting end to end on the offline espeak-ng dataset: search -> export -> TFLM validation.

One small search (``tiny`` preset: 6 training speakers, 24 test clips of the 12-class task) runs
once per module: DS-CNN candidates costed with the front end's flash and RAM, trained with
distillation from the dscnn teacher, the best one retrained and exported with ``features.c``,
and validated in TFLite Micro on the test split's features quantized as ``features.c`` does.
The second test compiles the bundle's own ``features.c`` on the host against CMSIS-DSP and feeds
its output for the test clips' PCM to the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mcunas.cli import main
from mcunas.config import load_experiment
from mcunas.data import load_dataset
from mcunas.data.audio_augment import render_clip
from mcunas.data.speech_commands import compose_splits, scan_speech_commands
from mcunas.data.wav import read_wav
from mcunas.estimators import load_board
from mcunas.export.tflite import load_tflm
from mcunas.frontend import FrontEndConfig, InputQuantization, frontend_memory_bytes, quantize_features
from mcunas.frontend.host_build import build_host_frontend, run_host_frontend

BOARD = "arduino-nano-33-ble-sense"
CLASSES = 12
# Chance on the 12-class test split is 1/12 = 8.3 % (also the share of its largest class: 2 of the
# 24 clips per keyword, silence and unknown). "Well above chance": at least three times that.
MIN_INT8_ACCURACY = 3 / CLASSES

EXPERIMENT = {
    "name": "kws_e2e",
    "seed": 0,
    "dataset": {"name": "speech_commands", "speech_commands": {"task": CLASSES}},
    "space": {"name": "dscnn", "stem_channels": [16, 32], "stem_kernels": [[10, 4], [6, 4]],
              "stages": [{"stride": 1, "channels": [16, 32], "depth": [1, 2]}], "kernel_sizes": [3]},
    "boards": [BOARD],
    "objectives": ["accuracy", "latency_ms"],
    "search": {"sampler": "nsga2", "trials": 3},
    "training": {"epochs": 15, "batch_size": 32, "optimizer": "adam", "lr": 0.01},
    "distillation": {"enabled": True, "teacher_epochs": 15},
    "final": {"epochs": 40, "max_models": 1},
    "export": {"calibration_samples": 64, "max_int8_drop_pp": 100.0},
}


@pytest.fixture(scope="module")
def kws_run(espeak_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of ``mcunas search`` on the tiny espeak dataset (config.yaml inside)."""
    folder = tmp_path_factory.mktemp("kws-e2e")
    config = json.loads(json.dumps(EXPERIMENT))
    config["dataset"].update(data_dir=str(espeak_dataset))
    config["dataset"]["speech_commands"]["feature_cache_dir"] = str(folder / "features")
    (folder / "kws.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["search", str(folder / "kws.yaml"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def _export_dir(run_dir: Path) -> Path:
    (export_dir,) = sorted((run_dir / "exports" / BOARD).iterdir())
    return export_dir


def test_search_export_and_tflm_validation_on_device_features(kws_run: Path):
    frontend_flash, frontend_ram = frontend_memory_bytes(FrontEndConfig())
    board = load_board(BOARD)
    trials = [json.loads(path.read_text()) for path in sorted((kws_run / "trials" / BOARD).glob("*/metrics.json"))]
    assert len(trials) == EXPERIMENT["search"]["trials"]
    for metrics in trials:  # the front end is in every candidate's budget
        cost = metrics["estimates"]
        assert (cost["frontend_flash_bytes"], cost["frontend_ram_bytes"]) == (frontend_flash, frontend_ram)
        assert cost["sram_bytes"] == cost["arena_bytes"] + board.sram_reserve_bytes + frontend_ram
        assert cost["flash_bytes"] > cost["model_bytes"] + frontend_flash
    teacher = json.loads((kws_run / "teacher" / "arch.json").read_text())  # the dscnn space's largest arch
    assert (teacher["space"], teacher["resolution"], teacher["stem_channels"]) == ("dscnn", [49, 10], 32)

    export_dir = _export_dir(kws_run)
    names = {path.name for path in export_dir.iterdir()}
    assert {"model.tflite", "model_config.h", "features.c", "mcunas_features.h", "validation.json"} <= names
    validation = json.loads((export_dir / "validation.json").read_text())
    assert validation["int8_input_source"] == "front_end" and validation["test_samples"] == 24
    assert validation["accuracy_int8"] >= MIN_INT8_ACCURACY, validation
    assert validation["arena_bytes_measured"] == validation["arena_bytes_predicted"]
    readme = (export_dir / "README.md").read_text()
    assert "features_compute(pcm, interpreter->input(0)->data.int8)" in readme
    assert f"| front end flash (in the flash above), bytes | {frontend_flash:,} |" in readme
    source = (export_dir / "features.c").read_text()
    assert f"int8 input scale {validation['input_scale']!r}, zero point {validation['input_zero_point']}" in source


def test_bundle_features_c_gives_the_validated_inputs(kws_run: Path, cmsis_dsp_dir: Path, cmsis_library: Path,
                                                      tmp_path: Path):
    """The bundle's features.c, built on the host, turns the test clips' PCM into exactly the int8
    inputs validation used, and the model's accuracy on them is validation.json's."""
    experiment = load_experiment(kws_run / "config.yaml")
    splits = load_dataset(experiment.dataset, experiment.seed)
    cfg = splits.front_end
    index = scan_speech_commands(experiment.dataset.data_dir)
    noises = [read_wav(path, cfg.sample_rate_hz) for path in index.background]
    recipes = compose_splits(index, CLASSES, [len(noise) for noise in noises], cfg.clip_samples)["test"]
    pcm = np.stack([render_clip(recipe, None if recipe.source is None else read_wav(index.data_dir / recipe.source,
                                                                                    cfg.sample_rate_hz),
                                noises, cfg.clip_samples) for recipe in recipes])
    assert [recipe.label for recipe in recipes] == list(splits.test.y)

    export_dir = _export_dir(kws_run)
    executable = build_host_frontend(export_dir, cmsis_dsp_dir, cmsis_library, tmp_path / "build")
    _, device_int8 = run_host_frontend(executable, pcm, cfg)
    tflm = load_tflm(export_dir / "model.tflite")
    quant = InputQuantization(splits.mean[0], splits.std[0], tflm.input_details.scale, tflm.input_details.zero_point)
    np.testing.assert_array_equal(device_int8, quantize_features(splits.test_raw, cfg, quant))
    predicted = np.argmax(tflm.predict_int8(device_int8[..., np.newaxis]), axis=-1)
    validation = json.loads((export_dir / "validation.json").read_text())
    assert float(np.mean(predicted == splits.test.y)) == validation["accuracy_int8"]
