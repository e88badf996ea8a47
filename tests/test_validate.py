"""Validation in the real TFLite Micro interpreter: accuracy, arena and size vs predictions, CLI.

One small trained model (a synthetic 12x12 one-channel task) is exported once per module; each
test then runs TFLM on at most 60 test samples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from mcunas.export.validate import FLOAT_MODEL_NAME, layer_errors, validate_tflite
from mcunas.graph.tflite import read_tflite
from mcunas.tflm import measure_arena_bytes

RESOLUTION = 12


class SmallNet(nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A briefly trained model exported to model.tflite + model_float32.tflite, its config and splits."""
    from mcunas.config import load_experiment
    from mcunas.data import calibration_sample, load_dataset
    from mcunas.export.tflite import export_tflite

    folder = tmp_path_factory.mktemp("validate")
    config = {
        "name": "validate-test",
        "dataset": {"name": "synthetic", "resolution": RESOLUTION, "channels": 1,
                    "max_train_samples": 400, "max_test_samples": 60},
        "boards": ["arduino-nano-33-ble-sense"],
    }
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    splits = load_dataset(load_experiment(config_path).dataset, 0)
    torch.manual_seed(0)
    model = SmallNet(splits.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    for step in range(120):
        batch = torch.randint(0, len(x), (64,))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    model.eval()
    path = export_tflite(model, (1, 1, RESOLUTION, RESOLUTION), calibration_sample(splits, 64, 0),
                         folder / "model.tflite", float_out_path=folder / FLOAT_MODEL_NAME, isolate=False)
    return {"path": path, "model": model, "splits": splits, "config": config_path}


def _litert_int8_top1(path, x_nchw: np.ndarray) -> np.ndarray:
    """Independent int8 reference: LiteRT with the reference kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    scale, zero = detail["quantization"]
    top1 = []
    for sample in x_nchw.transpose(0, 2, 3, 1):
        interpreter.set_tensor(detail["index"], np.clip(np.round(sample / scale) + zero, -128, 127).astype(np.int8)[None])
        interpreter.invoke()
        top1.append(int(np.argmax(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))))
    return np.array(top1)


def test_validate_tflite_measures_accuracy_and_memory(exported, tmp_path):
    splits, path = exported["splits"], exported["path"]
    json_path = tmp_path / "validation.json"
    result = validate_tflite(path, splits, board="arduino-nano-33-ble-sense", float_model=exported["model"],
                             max_test_samples=50, json_path=json_path)
    saved = json.loads(json_path.read_text())
    assert saved == json.loads(json.dumps(result.to_dict()))
    assert result.arena_bytes_measured == measure_arena_bytes(path)
    assert result.arena_bytes_min_measured >= result.arena_bytes_measured - 16
    assert result.model_bytes == path.stat().st_size
    assert min(result.arena_bytes_predicted, result.arena_bytes_predicted_target, result.model_bytes_predicted) > 0
    x, y = splits.test.x[:50], splits.test.y[:50]
    assert result.test_samples == 50
    # TFLM agrees with an independent int8 interpreter (reference kernels, within 1 LSB).
    assert abs(result.accuracy_int8 - np.mean(_litert_int8_top1(path, x) == y)) <= 0.02
    with torch.no_grad():
        float_top1 = exported["model"](torch.from_numpy(x)).argmax(1).numpy()
    assert result.accuracy_float == pytest.approx(np.mean(float_top1 == y))
    assert result.accuracy_float > 0.5  # the model learned the task
    assert result.int8_drop_pp == pytest.approx(100 * (result.accuracy_float - result.accuracy_int8))
    assert result.top1_agreement >= 0.9
    assert "arena bytes (host, 64-bit)" in result.table()


def test_drop_over_threshold_names_worst_layers(exported, tmp_path):
    """With a threshold nothing meets, the report names layers, worst first, from the float model."""
    result = validate_tflite(exported["path"], exported["splits"], max_int8_drop_pp=-100.0, max_test_samples=20,
                             json_path=tmp_path / "v.json")
    assert result.accuracy_float is not None  # model_float32.tflite found beside the model
    assert result.int8_drop_exceeded
    assert result.worst_layers
    errors = [layer.relative_rmse for layer in result.worst_layers]
    assert errors == sorted(errors, reverse=True) and all(np.isfinite(errors)) and errors[0] > 0
    assert {layer.kind for layer in result.worst_layers} <= {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "MEAN",
                                                            "FULLY_CONNECTED"}
    table = result.table()
    assert "exceeds -100.00 pp" in table and result.worst_layers[0].tensor in table


def test_layer_errors_are_small_for_a_well_calibrated_model(exported):
    path = exported["path"]
    x = np.ascontiguousarray(exported["splits"].test.x[:8].transpose(0, 2, 3, 1))
    errors = layer_errors(path, path.with_name(FLOAT_MODEL_NAME), x)
    assert len(errors) == len(read_tflite(path).ops)  # one entry per op
    assert max(e.relative_rmse for e in errors) < 0.2


def test_cli_validate_json(exported, tmp_path, capsys):
    from mcunas.cli import main

    path = exported["path"]
    assert main(["validate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("arena_bytes_measured", "arena_bytes_predicted", "model_bytes", "model_bytes_predicted"):
        assert isinstance(out[key], int), key
    assert out["accuracy_int8"] is None and out["board"] is None

    assert not (path.parent / "validation.json").exists()  # no file unless --output

    written = tmp_path / "validation.json"
    argv = ["validate", str(path), "--config", str(exported["config"]), "--max-test-samples", "30", "--json",
            "--output", str(written)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["board"] == "arduino-nano-33-ble-sense" and out["test_samples"] == 30
    for key in ("accuracy_int8", "accuracy_float", "top1_agreement"):
        assert 0.0 <= out[key] <= 1.0, key
    assert json.loads(written.read_text()) == out


def test_cli_validate_missing_model(tmp_path, capsys):
    from mcunas.cli import main

    assert main(["validate", str(tmp_path / "nope.tflite")]) == 2
    assert "nope.tflite: no such .tflite file" in capsys.readouterr().err
