"""Flash model: predicted .tflite size against real files; runtime-code estimate sanity."""

from __future__ import annotations

import numpy as np
import pytest

from mcunas.estimators.flash import (
    BUFFER_ALIGNMENT,
    QUANT_BYTES_PER_CHANNEL,
    model_bytes,
    runtime_code_bytes,
)
from mcunas.estimators.memory import arena_bytes
from mcunas.graph.ir import Graph, Op
from mcunas.graph.tflite import read_tflite
from mcunas.tflm import measure_arena_bytes

# Small architectures of the two spaces (exported in about 5 s each).
SMALL_ARCHS = (
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
)


def _relative_error(predicted: int, actual: int) -> float:
    return abs(predicted - actual) / actual


def test_size_terms_are_additive():
    graph = Graph("g")
    x = graph.add_tensor("x", (1, 8, 8, 4))
    y = graph.add_tensor("y", (1, 4, 4, 4))
    graph.ops.append(Op("AVERAGE_POOL_2D", (x,), (y,), (2, 2), (2, 2), "VALID"))
    graph.inputs, graph.outputs = (x,), (y,)
    before = model_bytes(graph)
    # a 100-byte constant with 4 quantization channels costs its aligned data and quant params
    # plus one tensor's fixed overhead, shape vector and name
    bigger = Graph("g", list(graph.tensors), list(graph.ops), graph.inputs, graph.outputs)
    bigger.add_tensor("c", (100,), "int8", is_constant=True, quant_channels=4)
    growth = model_bytes(bigger) - before
    data = (100 + BUFFER_ALIGNMENT - 1) // BUFFER_ALIGNMENT * BUFFER_ALIGNMENT
    assert data + 4 * QUANT_BYTES_PER_CHANNEL < growth < data + 4 * QUANT_BYTES_PER_CHANNEL + 200


def test_imported_mlperf_models(mlperf_dir):
    """Files of other converters (other names, metadata): a few percent; weights dominate ad01."""
    errors = {}
    for name in ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8"):
        graph = read_tflite(mlperf_dir / f"{name}.tflite")
        errors[name] = _relative_error(model_bytes(graph), graph.file_bytes)
    assert errors["ad01_int8"] < 0.01, errors
    assert max(errors.values()) < 0.12, errors


def test_tensorflow_converted_models(tmp_path_factory):
    """Keras -> TFLiteConverter files (1-40 KB; other metadata than onnx2tf exports): within
    10% or 256 bytes (the fixed overhead dominates the smallest)."""
    from test_memory import session_int8_models

    for name, path in session_int8_models(tmp_path_factory).items():
        graph = read_tflite(path)
        error = abs(model_bytes(graph) - graph.file_bytes)
        assert error <= max(0.10 * graph.file_bytes, 256), (name, model_bytes(graph), graph.file_bytes)


@pytest.mark.slow
@pytest.mark.parametrize("arch_dict", SMALL_ARCHS, ids=lambda d: d["space"])
def test_exported_models_match_predictions(arch_dict, tmp_path):
    """The property the search relies on: the size and the host arena predicted from
    ``Space.graph`` before training are those of the file ``mcunas.export`` writes."""
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
    path = export_tflite(model, shape, calibration, tmp_path / "model.tflite")
    size = path.stat().st_size
    assert _relative_error(model_bytes(space.graph(arch)), size) < 0.01
    assert _relative_error(model_bytes(read_tflite(path)), size) < 0.002
    assert arena_bytes(space.graph(arch), "host", "reference") == measure_arena_bytes(path)


def test_runtime_code_estimate():
    kinds = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "PAD"]
    reference = runtime_code_bytes(kinds, "reference", "cortex-m4")
    cmsis = runtime_code_bytes(kinds, "cmsis-nn", "cortex-m4")
    assert 16 * 1024 < reference < cmsis < 120 * 1024
    assert runtime_code_bytes(kinds[:2], "cmsis-nn", "cortex-m4") < cmsis
    assert runtime_code_bytes(kinds, "cmsis-nn", "cortex-m0plus") > cmsis
    assert runtime_code_bytes(kinds + kinds, "cmsis-nn", "cortex-m4") == cmsis
