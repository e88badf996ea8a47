"""Every op kind mcunas models, on models generated here, against the real TFLite Micro interpreter.

The models come from ``tests/model_zoo.py``: Keras -> TFLiteConverter (int8 with int8 and with
float32 I/O, and 16x8 with int16 I/O) and PyTorch -> ONNX -> onnx2tf -> TFLiteConverter (one
keeping its NCHW input, so it starts with a TRANSPOSE), from a few hundred bytes of arena to
~180 KB, with non-square inputs and kernels, 1-channel inputs and files under 4 KB. For each:
the host arena predicted from the imported graph equals the interpreter's (within the 16-byte
alignment step), the predicted file size is within 1 %, and the 32-bit arena (the same
accounting with 32-bit struct sizes) is computed for both kernel libraries.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcunas.estimators.flash import model_bytes
from mcunas.estimators.memory import arena_bytes, plan_bytes, tail_bytes
from mcunas.graph.tflite import INT16_OPS, SUPPORTED_OPS, read_tflite
from mcunas.tflm import measure_arena_bytes

ARENA_TOLERANCE_BYTES = 16
SIZE_TOLERANCE = 0.01


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> dict[str, Path]:
    """All generated models (the Keras ones are shared with the other test modules)."""
    from model_zoo import write_onnx2tf_models
    from test_memory import session_int8_models

    models = dict(session_int8_models(tmp_path_factory))
    models.update(write_onnx2tf_models(tmp_path_factory.mktemp("onnx2tf_models")))
    return models


@pytest.fixture(scope="session")
def graphs(generated):
    return {name: read_tflite(path) for name, path in generated.items()}


def test_the_set_covers_every_op_kind_and_the_shapes_asked_for(graphs):
    assert len(graphs) >= 40
    kinds = {op.kind for graph in graphs.values() for op in graph.ops}
    assert kinds == SUPPORTED_OPS, f"op kinds not generated: {sorted(SUPPORTED_OPS - kinds)}"
    int16_kinds = {op.kind for g in graphs.values() if g.tensors[g.inputs[0]].dtype == "int16" for op in g.ops}
    assert len(int16_kinds & INT16_OPS) >= 15
    sizes = [graph.file_bytes for graph in graphs.values()]
    assert sum(size < 4096 for size in sizes) >= 20
    inputs = [graph.tensors[graph.inputs[0]] for graph in graphs.values()]
    assert any(t.dtype == "float32" for t in inputs) and any(t.dtype == "int16" for t in inputs)
    assert any(len(t.shape) == 4 and t.shape[-1] == 1 for t in inputs)  # 1-channel (audio) inputs
    assert any(len(t.shape) == 4 and t.shape[1] != t.shape[2] for t in inputs)  # non-square inputs
    kernels = [op.kernel for graph in graphs.values() for op in graph.ops if op.kernel]
    assert any(kh != kw for kh, kw in kernels)
    assert graphs["onnx2tf_upsampler"].ops[0].kind == "TRANSPOSE"  # NCHW input kept by onnx2tf


def test_host_arena_equals_the_interpreters(generated, graphs):
    errors = {name: arena_bytes(graphs[name], "host", "reference") - measure_arena_bytes(path)
              for name, path in generated.items()}
    wrong = {name: error for name, error in errors.items() if abs(error) > ARENA_TOLERANCE_BYTES}
    assert not wrong, f"predicted - measured host arena (bytes): {wrong}"
    assert sum(error == 0 for error in errors.values()) >= len(errors) - 2, errors


def test_model_size_within_one_percent(graphs):
    errors = {name: (model_bytes(graph) - graph.file_bytes) / graph.file_bytes for name, graph in graphs.items()}
    wrong = {name: f"{100 * error:+.2f}%" for name, error in errors.items() if abs(error) > SIZE_TOLERANCE}
    assert not wrong, f"predicted vs actual .tflite size: {wrong}"


def test_32_bit_arena_follows_the_same_accounting(graphs):
    """Same plan up to the kernels' scratch buffers (the 32-bit reductions request fewer),
    smaller persistent structures (4-byte pointers)."""
    for name, graph in graphs.items():
        assert plan_bytes(graph, "reference", "cortex-m") <= plan_bytes(graph, "reference", "host"), name
        assert tail_bytes(graph, "cortex-m", "reference") < tail_bytes(graph, "host", "reference"), name
        assert tail_bytes(graph, "cortex-m", "cmsis-nn") >= tail_bytes(graph, "cortex-m", "reference"), name
