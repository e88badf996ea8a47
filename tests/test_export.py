"""Export: PyTorch -> ONNX -> onnx2tf -> int8 TFLite -> TFLite Micro, bundle, failure hygiene.

Real toolchain throughout (torch.onnx, onnx2tf, TFLiteConverter, the TFLM Python interpreter).
Each export costs ~2-10 s on a 2-core machine, so the non-slow tests do five; the slow ones
export >= 30 random architectures per space and train an MNIST model.

Spaces vs export (docs/architecture.md "Graph = the deployed model"): with onnx2tf 1.28.8 /
TensorFlow 2.21 the exported model has no ``RESHAPE`` before the classifier (``MEAN`` keeps
dims, ``FULLY_CONNECTED`` reads the ``(1, 1, 1, C)`` tensor), and a strided convolution keeps
an explicit ``PAD`` only when TensorFlow's ``SAME`` padding differs from PyTorch's symmetric
``k // 2`` (stride 2 on an even size); on an odd size the converter folds the PAD into a
``SAME`` convolution. ``GraphBuilder`` encodes both. The converter also stores equal constants
once (PADs adding the same padding share one paddings tensor) while ``GraphBuilder`` gives each
PAD its own; the estimators and ``graph_differences`` count such duplicates once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mcunas.errors import ExportError
from mcunas.export.bundle import arena_allocation_bytes
from mcunas.export.selfcheck import check_export, randomize_batchnorm
from mcunas.export.tflite import TFLM_INT8_OPS, export_tflite, load_tflm
from mcunas.graph.tflite import read_tflite

# Tiny search spaces: 8-16 px inputs, a few channels, every block kind and kernel size.
TINY_STAGES = [
    {"stride": 1, "channels": [4, 8], "depth": [1, 2]},
    {"stride": 2, "channels": [8, 12], "depth": [1, 2]},
    {"stride": 2, "channels": [12, 16], "depth": [1, 2]},
]
TINY_SPACES = {
    "mobilenetv2": dict(input_channels=3, resolutions=[8, 12, 15, 16], stem_channels=[4, 8], stages=TINY_STAGES,
                        kernel_sizes=[3, 5, 7], expand_ratios=[1, 2, 3]),
    "mobilenetv1": dict(input_channels=1, resolutions=[8, 12, 15, 16], stem_channels=[4, 8], stages=TINY_STAGES,
                        kernel_sizes=[3, 5]),
    "cnn": dict(input_channels=1, resolutions=[8, 12, 15, 16], stem_channels=[4, 8], stages=TINY_STAGES,
                kernel_sizes=[3, 5]),
}
# Measured and predicted host arenas must agree to this (TFLM aligns buffers to 16 bytes).
ARENA_TOLERANCE_BYTES = 16
# Predicted (stripped) .tflite size within this fraction of the file: benchmarks/flash_fit.py
# found 0.3 % at most, in-sample and held out (see benchmarks/RESULTS.md).
MODEL_TOLERANCE = 0.01


class TinyNet(nn.Module):
    """Stride-2 conv + BN + ReLU6, depthwise, residual add, global average pool, linear."""

    def __init__(self, in_channels: int = 3, classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.project(self.depthwise(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class Unconvertible(nn.Module):
    """An op without a TFLite int8 kernel (the sine): conversion must fail, naming the stage."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.conv(x)).mean((2, 3))


class NotExportable(nn.Module):
    """``aten::kthvalue`` has no ONNX symbolic in opset 17: the ONNX export fails."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.kthvalue(x, 2, dim=3)[0].mean(2)


def _random_arch(space_name: str, seed: int):
    import optuna

    from mcunas.spaces import get_space

    space = get_space(space_name, **TINY_SPACES[space_name])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space, space.sample(study.ask())


def test_tiny_module_export_runs_in_tflm_and_matches_torch(tmp_path):
    """int8 I/O, TFLM int8 ops only, BN folded, outputs close to float (the child-process path
    is exercised by the CLI test)."""
    torch.manual_seed(0)
    model = randomize_batchnorm(TinyNet(), 0)
    rng = np.random.default_rng(0)
    calibration = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    out = export_tflite(model, (1, 3, 16, 16), calibration, tmp_path / "m.tflite", float_out_path=tmp_path / "f.tflite",
                        isolate=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.tflite", "m.tflite"]
    graph = read_tflite(out)
    assert [op.kind for op in graph.ops] == ["PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"]
    assert set(graph.op_kinds()) <= TFLM_INT8_OPS
    assert graph.ops[1].activation == "RELU6" and graph.ops[1].padding == "VALID"  # BN folded, ReLU6 fused
    tflm = load_tflm(out)
    assert tflm.input_details.shape == (1, 16, 16, 3)
    assert tflm.input_details.dtype == np.int8 and tflm.output_details.dtype == np.int8
    x = rng.standard_normal((20, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = tflm.dequantize_output(tflm.predict_int8(tflm.quantize_input(x.transpose(0, 2, 3, 1))))
    spread = expected.max() - expected.min()
    assert np.abs(got - expected).max() < 0.1 * spread
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.8


def _assert_matches_prediction(check) -> None:
    assert check.exported, check.error
    assert check.differences == [], check.block_string
    assert abs(check.arena_error_bytes) <= ARENA_TOLERANCE_BYTES, check.to_dict()
    assert abs(check.model_error_bytes) <= MODEL_TOLERANCE * check.model_bytes, check.to_dict()


@pytest.mark.parametrize("space_name, seed", [("mobilenetv2", 3), ("mobilenetv1", 4), ("cnn", 7)])
def test_space_arch_export_matches_graph_and_arena(space_name, seed, tmp_path):
    """A random architecture: exported ops and shapes = Space.graph(arch); arena and size = prediction."""
    space, arch = _random_arch(space_name, seed)
    _assert_matches_prediction(check_export(space, arch, tmp_path / "model.tflite", seed))


@pytest.mark.slow
@pytest.mark.parametrize("space_name", sorted(TINY_SPACES))
def test_every_sampled_arch_exports_as_predicted(space_name, tmp_path):
    """Property: 30 random architectures per space export, run in TFLM and match the predictions."""
    import optuna

    from mcunas.spaces import get_space

    space = get_space(space_name, **TINY_SPACES[space_name])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=100))
    for i in range(30):
        _assert_matches_prediction(check_export(space, space.sample(study.ask()), tmp_path / f"{i}.tflite", i))


# dscnn: rectangular inputs, odd and even stem kernels, stem strides (2, 2), (2, 1), (1, 2).
TINY_DSCNN = dict(input_size=[15, 6], stem_channels=[4, 8], stem_kernels=[[4, 2], [3, 3], [5, 4]],
                  stem_strides=[[2, 2], [2, 1], [1, 2]], stages=TINY_STAGES, kernel_sizes=[3, 5])


@pytest.mark.parametrize(
    "text",
    [
        # The MLPerf Tiny DS-CNN geometry: 10x4 stride 2x2 on 49x10 -> PAD to 59x12 + VALID -> 25x5;
        # a stride-2 stage on 25x5 (odd sizes: SAME).
        "r49x10_in1-relu-stem_k10x4_s2x2_c8-dsc_r1_k3_s1_c8-dsc_r2_k5.3_s2_c12-fc12",
        # 4x3 stride (2, 1) on 12x7: TensorFlow's SAME padding equals PyTorch's (SAME, no PAD);
        # stride 2 on 6x7 (even height: PAD); relu6.
        "r12x7_in1-relu6-stem_k4x3_s2x1_c8-dsc_r1_k3_s2_c8-dsc_r1_k5_s2_c16-fc4",
    ],
)
def test_dscnn_export_matches_graph_and_arena(text, tmp_path):
    from mcunas.spaces import get_space, parse_block_string

    arch = parse_block_string(text)
    _assert_matches_prediction(check_export(get_space("dscnn"), arch, tmp_path / "model.tflite", 5))


def test_cnn_max_pools_export_as_predicted(tmp_path):
    """Max pools on odd maps (15 -> 7: VALID drops the last row and column) and even ones, after
    plain and depthwise-separable blocks, and a pool on a 2x2 map (-> 1x1, no MEAN)."""
    from mcunas.spaces import get_space, parse_block_string

    text = "r15_in1-relu-stem_k3_s1_c4-cnn_r2_k3.5_d0.1_p1_s1_c8-cnn_r1_k3_d0_p1_s2_c8-fc10"
    arch = parse_block_string(text)
    graph = get_space("cnn").graph(arch)
    assert [op.kind for op in graph.ops].count("MAX_POOL_2D") == 3 and "MEAN" not in [op.kind for op in graph.ops]
    _assert_matches_prediction(check_export(get_space("cnn"), arch, tmp_path / "model.tflite", 6))


@pytest.mark.slow
def test_every_sampled_dscnn_arch_exports_as_predicted(tmp_path):
    """Property: 12 random rectangular architectures export, run in TFLM and match the predictions."""
    import optuna

    from mcunas.spaces import get_space

    space = get_space("dscnn", **TINY_DSCNN)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=100))
    for i in range(12):
        arch = space.sample(study.ask())
        _assert_matches_prediction(check_export(space, arch, tmp_path / f"{i}.tflite", i))


def test_onnx_export_failure_names_stage_and_leaves_nothing(tmp_path):
    out = tmp_path / "out" / "model.tflite"
    with pytest.raises(ExportError, match="ONNX export"):
        export_tflite(NotExportable(), (1, 1, 8, 8), np.zeros((2, 1, 8, 8), np.float32), out, isolate=False)
    assert not (tmp_path / "out").exists()


def test_unsupported_op_fails_int8_quantization_and_leaves_nothing(tmp_path):
    out = tmp_path / "out" / "model.tflite"
    calibration = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ExportError, match="int8 quantization"):
        export_tflite(Unconvertible().eval(), (1, 1, 8, 8), calibration, out, isolate=False)
    assert not (tmp_path / "out").exists()


def test_calibration_shape_mismatch_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match=r"calibration data of shape \(2, 1, 8, 8\)"):
        export_tflite(TinyNet(1), (1, 1, 16, 16), np.zeros((2, 1, 8, 8), np.float32), tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []


def _experiment_file(tmp_path, resolution: int, channels: int):
    import yaml

    config = {
        "name": "export-test",
        "dataset": {"name": "synthetic", "resolution": resolution, "channels": channels,
                    "max_train_samples": 240, "max_test_samples": 60},
        "space": {"name": "mobilenetv1"},
        "boards": ["arduino-nano-33-ble-sense"],
        "export": {"calibration_samples": 32, "max_int8_drop_pp": 1.0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_export_run_dir_writes_validated_bundle(tmp_path, capsys):
    """``mcunas export RUN_DIR``: final weights -> exports/<board>/<n>/ with the whole bundle."""
    from mcunas.cli import main

    space, arch = _random_arch("mobilenetv1", 7)
    run_dir = tmp_path / "run"
    board = "arduino-nano-33-ble-sense"
    (run_dir / "trials" / board / "5").mkdir(parents=True)
    (run_dir / "final" / board / "5").mkdir(parents=True)
    _experiment_file(run_dir, arch.resolution, arch.input_channels)
    (run_dir / "trials" / board / "5" / "arch.json").write_text(json.dumps(arch.to_dict()))
    torch.save(randomize_batchnorm(space.build(arch), 7).state_dict(), run_dir / "final" / board / "5" / "weights.pt")

    assert main(["export", str(run_dir), "--max-test-samples", "40"]) == 0
    assert "arena bytes (host, 64-bit)" in capsys.readouterr().out
    out = run_dir / "exports" / board / "5"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.tflite", "model_float32.tflite", "model_data.cc", "model_data.h", "model_config.h", "README.md",
         "profile_main.cc", "validation.json", "per_op.txt"]
    )
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    saved = json.loads((out / "validation.json").read_text())
    for key in ("arena_bytes_measured", "arena_bytes_predicted", "arena_bytes_predicted_target", "model_bytes",
                "model_bytes_predicted", "accuracy_int8", "accuracy_float", "top1_agreement", "int8_drop_pp"):
        assert saved[key] is not None, key
    assert saved["model_bytes"] == (out / "model.tflite").stat().st_size
    assert saved["test_samples"] == 40 and saved["board"] == board
    assert saved["tflite_path"] == str(out / "model.tflite")

    data = (out / "model.tflite").read_bytes()
    source = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[] = {" in source
    assert f"const unsigned int g_model_data_len = {len(data)};" in source
    assert source.count("0x") == len(data)
    _assert_c_array_compiles_to(out, data, tmp_path)
    header = (out / "model_config.h").read_text()
    kinds = read_tflite(out / "model.tflite").op_kinds()
    assert f"constexpr int kNumOps = {len(kinds)};" in header
    assert header.count("resolver.Add") == len(kinds) and "resolver.AddConv2D()" in header
    headroom = saved["arena_bytes_min_measured"] - saved["arena_bytes_measured"]
    arena = arena_allocation_bytes(saved["arena_bytes_predicted_target"], headroom)
    assert f"constexpr int kTensorArenaSize = {arena};" in header
    assert f"constexpr int kInputZeroPoint = {saved['input_zero_point']};" in header
    profiling = (out / "profile_main.cc").read_text()
    assert '#include "model_config.h"' in profiling and "int mcunas_profile()" in profiling


def _assert_c_array_compiles_to(bundle, data: bytes, work) -> None:
    """Compile model_data.cc with a small main that writes the array out; compare with the file."""
    import shutil
    import subprocess

    compiler = shutil.which("g++")
    if compiler is None:
        return  # no C++ compiler on this machine: the text checks above still ran
    main_source = work / "dump.cc"
    main_source.write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        "int main() {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_model_data) % 16 != 0) return 3;\n"
        "  return std::fwrite(g_model_data, 1, g_model_data_len, stdout) == g_model_data_len ? 0 : 4;\n"
        "}\n"
    )
    binary = work / "dump"
    subprocess.run([compiler, "-std=c++17", "-I", str(bundle), str(bundle / "model_data.cc"), str(main_source),
                    "-o", str(binary)], check=True, capture_output=True)
    result = subprocess.run([str(binary)], capture_output=True, check=False)
    assert result.returncode == 0 and result.stdout == data


def test_cli_export_missing_weights_leaves_nothing(tmp_path, capsys):
    from mcunas.cli import main

    _, arch = _random_arch("mobilenetv1", 1)
    (tmp_path / "arch.json").write_text(json.dumps(arch.to_dict()))
    config = _experiment_file(tmp_path, arch.resolution, arch.input_channels)
    out = tmp_path / "exports" / "b" / "3"
    argv = ["export", "--arch", str(tmp_path / "arch.json"), "--weights", str(tmp_path / "absent.pt"),
            "--config", str(config), "--out", str(out)]
    assert main(argv) == 2
    assert "absent.pt: no such file" in capsys.readouterr().err
    assert not (tmp_path / "exports").exists()


def test_arena_allocation_adds_headroom_and_margin():
    assert arena_allocation_bytes(10_000) == 11_024  # +1 KiB (> 5 %), multiple of 16
    assert arena_allocation_bytes(100_000, headroom_bytes=1_000) == 106_000  # +5 % + headroom
    assert arena_allocation_bytes(100_001) % 16 == 0


@pytest.mark.slow
def test_mnist_candidate_loses_at_most_1pp_in_tflm(mnist_dir, tmp_path):
    """A small MobileNetV1 trained on 10k MNIST images for 2 epochs: float -> int8 (TFLM) top-1
    drop <= 1 pp on 2000 test images (benchmarks/export_success.py --mnist records the numbers)."""
    import optuna
    import yaml

    from mcunas.config import load_experiment
    from mcunas.data import load_dataset
    from mcunas.export import export_model
    from mcunas.search.train import TrainData, train
    from mcunas.spaces import get_space

    config = {
        "name": "mnist-int8",
        "dataset": {"name": "mnist", "data_dir": str(mnist_dir), "resolution": 28,
                    "max_train_samples": 10000, "max_test_samples": 2000},
        "space": {"name": "mobilenetv1"},
        "training": {"batch_size": 64, "optimizer": "adam", "lr": 0.003, "augment": False},
        "export": {"calibration_samples": 256, "max_int8_drop_pp": 1.0},
    }
    (tmp_path / "mnist.yaml").write_text(yaml.safe_dump(config))
    experiment = load_experiment(tmp_path / "mnist.yaml")
    space = get_space("mobilenetv1", input_channels=1, resolutions=[28], stem_channels=[16], kernel_sizes=[3], stages=[
        {"stride": 1, "channels": [24], "depth": [1, 1]},
        {"stride": 2, "channels": [32], "depth": [2, 2]},
        {"stride": 2, "channels": [64], "depth": [2, 2]},
    ])
    arch = space.sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask())
    splits = load_dataset(experiment.dataset, experiment.seed)
    torch.manual_seed(0)
    model = space.build(arch)
    train(model, TrainData.from_splits(splits, "mnist"), experiment.training, epochs=2, seed=0)
    validation = export_model(arch, model.state_dict(), tmp_path / "export", splits=splits, experiment=experiment,
                              isolate=False)
    assert validation.test_samples == 2000
    assert validation.accuracy_float > 0.9
    assert validation.int8_drop_pp <= 1.0, validation.table()
    assert not validation.int8_drop_exceeded
