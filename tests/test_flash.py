"""Flash model: predicted .tflite size against real files (exports of the spaces, MLPerf Tiny); runtime-code estimate sanity."""

from __future__ import annotations

import numpy as np
import pytest

from mcunas.estimators.flash import QUANT_BYTES_PER_CHANNEL, model_bytes, model_terms, runtime_code_bytes
from mcunas.estimators.memory import arena_bytes
from mcunas.graph.ir import Graph, Op
from mcunas.graph.tflite import read_tflite
from mcunas.tflm import measure_arena_bytes

# Quickstart-size architectures (10-20 KB files; exported in 10-20 s each in a fresh process):
# a 1-channel r16 MobileNetV2 with an (8, 8, 8) activation that onnx2tf validates on throw-away
# models (names 'model_2/...'), and a MobileNetV1 whose last stride-2 convolution is SAME on a
# 3x3 map (its bias name includes the PAD the converter folded into it).
QUICKSTART_ARCHS = (
    {
        "space": "mobilenetv2", "input_channels": 1, "num_classes": 10, "resolution": 16,
        "stem_channels": 16, "stem_kernel": 3, "stem_stride": 2, "stage_strides": [1, 2, 2],
        "stage_channels": [8, 24, 32], "block_kernels": [[5], [5], [5]], "block_expansions": [[1], [6], [1]],
    },
    {
        "space": "mobilenetv1", "input_channels": 1, "num_classes": 10, "resolution": 12,
        "stem_channels": 4, "stem_kernel": 3, "stem_stride": 2, "stage_strides": [1, 2, 2],
        "stage_channels": [4, 12, 12], "block_kernels": [[3, 3], [3, 3], [5]], "activation": "relu",
    },
)
# Larger architectures of the two spaces (30-330 KB files).
LARGER_ARCHS = (
    {
        "space": "mobilenetv1", "input_channels": 1, "num_classes": 10, "resolution": 32,
        "stem_channels": 24, "stem_kernel": 3, "stem_stride": 2, "stage_strides": [1, 2, 2, 2],
        "stage_channels": [24, 64, 64, 160], "block_kernels": [[5], [5], [5, 5], [3]], "activation": "relu",
    },
    {
        "space": "mobilenetv2", "input_channels": 3, "num_classes": 10, "resolution": 32,
        "stem_channels": 8, "stem_kernel": 3, "stem_stride": 2, "stage_strides": [1, 2, 2, 2, 1, 2],
        "stage_channels": [8, 16, 24, 32, 48, 64], "block_kernels": [[3], [3], [5], [3], [3], [5]],
        "block_expansions": [[1], [3], [3], [3], [3], [3]],
    },
    {
        "space": "mobilenetv1", "input_channels": 1, "num_classes": 10, "resolution": 32,
        "stem_channels": 16, "stem_kernel": 3, "stem_stride": 2, "stage_strides": [1, 2, 2, 2],
        "stage_channels": [16, 64, 128, 160], "block_kernels": [[3, 5], [3], [5, 5, 3], [3, 3]], "activation": "relu",
    },
    {
        "space": "mobilenetv2", "input_channels": 3, "num_classes": 10, "resolution": 48,
        "stem_channels": 16, "stem_kernel": 3, "stem_stride": 2, "stage_strides": [1, 2, 2, 2, 1, 2],
        "stage_channels": [8, 24, 32, 48, 48, 96], "block_kernels": [[7], [5, 7], [5, 7, 7], [7, 5, 5], [3, 3], [3, 3]],
        "block_expansions": [[3], [6, 4], [3, 4, 3], [4, 3, 3], [3, 4], [1, 3]],
    },
)
MLPERF_MODELS = ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")


def _relative_error(predicted: int, actual: int) -> float:
    return abs(predicted - actual) / actual


def test_size_terms_are_additive():
    graph = Graph("g")
    x = graph.add_tensor("x", (1, 8, 8, 4))
    y = graph.add_tensor("y", (1, 4, 4, 4))
    graph.ops.append(Op("AVERAGE_POOL_2D", (x,), (y,), (2, 2), (2, 2), "VALID"))
    graph.inputs, graph.outputs = (x,), (y,)
    before = model_bytes(graph)
    # a 100-byte constant with 4 quantization channels costs its data and quant params plus one
    # constant tensor's overhead and shape vector (no name: exports are stripped)
    bigger = Graph("g", list(graph.tensors), list(graph.ops), graph.inputs, graph.outputs)
    bigger.add_tensor("c", (100,), "int8", is_constant=True, quant_channels=4)
    growth = model_bytes(bigger) - before
    assert 100 + 4 * QUANT_BYTES_PER_CHANNEL < growth < 100 + 4 * QUANT_BYTES_PER_CHANNEL + 100
    assert model_terms(bigger).constant_tensors == model_terms(graph).constant_tensors + 1
    renamed = Graph("g", [t._replace(name=t.name * 20) for t in bigger.tensors], list(graph.ops), graph.inputs,
                    graph.outputs)
    assert model_bytes(renamed) == model_bytes(bigger)  # names are not stored


def test_importer_records_what_the_file_holds_beyond_ops(mlperf_dir):
    graph = read_tflite(mlperf_dir / "kws_ref_model.tflite")
    assert graph.description == "MLIR Converted."
    assert graph.metadata == {"min_runtime_version": 16}
    assert graph.signatures == []
    assert len(graph.minmax_channels) == len(graph.shape_signatures) == len(graph.tensors)
    # per-channel calibration ranges on the weights, one range per activation
    assert sum(graph.minmax_channels) == 590
    assert graph.shape_signatures[graph.inputs[0]]


def test_imported_mlperf_models(mlperf_dir):
    """Files of another converter (TF 2.3 era: min/max arrays, shape signatures), rebuilt by the
    layout replay: within 1% (the generated models: tests/test_generated_models.py)."""
    errors = {}
    for name in MLPERF_MODELS:
        graph = read_tflite(mlperf_dir / f"{name}.tflite")
        errors[name] = _relative_error(model_bytes(graph), graph.file_bytes)
    assert max(errors.values()) < 0.01, errors


def _export(arch_dict: dict, path):
    """Export ``arch_dict`` with random weights the way the pipeline does (fresh process)."""
    import torch

    from mcunas.export.selfcheck import randomize_batchnorm
    from mcunas.export.tflite import export_tflite
    from mcunas.spaces import arch_from_dict, get_space

    arch = arch_from_dict(arch_dict)
    space = get_space(arch.space)
    torch.manual_seed(0)
    shape = (1, arch.input_channels, arch.resolution, arch.resolution)
    calibration = np.random.default_rng(0).standard_normal((8, *shape[1:])).astype(np.float32)
    # BatchNorm statistics as after training: with the initial ones every bias is zero and the
    # converter stores identical constants once, which trained models never have.
    model = randomize_batchnorm(space.build(arch), seed=0)
    return space.graph(arch), export_tflite(model, shape, calibration, path, isolate=True)


def _check_export(arch_dict: dict, tmp_path) -> None:
    """The property the search relies on: the size and the host arena predicted from
    ``Space.graph`` before training are those of the (stripped) file ``mcunas.export`` writes;
    the file read back is sized by the layout replay."""
    graph, path = _export(arch_dict, tmp_path / "model.tflite")
    size = path.stat().st_size
    assert _relative_error(model_bytes(graph), size) < 0.01, (model_bytes(graph), size)
    assert _relative_error(model_bytes(read_tflite(path)), size) < 0.01
    assert arena_bytes(graph, "host", "reference") == measure_arena_bytes(path)


@pytest.mark.parametrize("arch_dict", QUICKSTART_ARCHS, ids=lambda d: d["space"])
def test_quickstart_exports_match_predictions(arch_dict, tmp_path):
    _check_export(arch_dict, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("arch_dict", LARGER_ARCHS, ids=lambda d: f"{d['space']}-r{d['resolution']}")
def test_larger_exports_match_predictions(arch_dict, tmp_path):
    _check_export(arch_dict, tmp_path)


def test_runtime_code_estimate():
    kinds = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "PAD"]
    reference = runtime_code_bytes(kinds, "reference", "cortex-m4")
    cmsis = runtime_code_bytes(kinds, "cmsis-nn", "cortex-m4")
    assert 16 * 1024 < reference < cmsis < 120 * 1024
    assert runtime_code_bytes(kinds[:2], "cmsis-nn", "cortex-m4") < cmsis
    assert runtime_code_bytes(kinds, "cmsis-nn", "cortex-m0plus") > cmsis
    assert runtime_code_bytes(kinds + kinds, "cmsis-nn", "cortex-m4") == cmsis
