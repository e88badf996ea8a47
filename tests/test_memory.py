"""Arena model vs the real TFLite Micro interpreter.

Ground truth: the host (64-bit, reference kernels) interpreter of the ``tflite-micro`` package on
the MLPerf Tiny models (the generated models of ``tests/model_zoo.py`` are checked in
``tests/test_generated_models.py``); the 32-bit arenas measured on a Cortex-M4 build of the
MLPerf Tiny models (``cortex-m4-instruction-counts.json``) and of 16 space models
(``space-instruction-counts.json``, their graphs from ``space-archs/``). Unit tests pin the
kernel rules (scratch buffers, persistent buffers) of :mod:`mcunas.estimators.tflm_kernels`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcunas.estimators.memory import (
    arena_bytes,
    arena_bytes_pair,
    duplicate_constant_indices,
    greedy_plan_bytes,
    live_bytes_per_op,
    plan_bytes,
    scratch_bytes,
    tail_bytes,
)
from mcunas.graph.ir import Graph, Op
from mcunas.graph.tflite import read_tflite

MLPERF_MODELS = ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")

_BUILT: dict[str, dict[str, Path]] = {}


def write_int8_models(out_dir: Path) -> dict[str, Path]:
    """The Keras models of ``tests/model_zoo.py`` converted into ``out_dir``; name -> path.

    Cached per directory for the session (about half a second per model).
    """
    from model_zoo import write_keras_models

    key = str(out_dir)
    if key not in _BUILT:
        _BUILT[key] = write_keras_models(out_dir)
    return _BUILT[key]


def session_int8_models(tmp_path_factory) -> dict[str, Path]:
    """The generated models in the session's base temp folder (built once per session)."""
    return write_int8_models(tmp_path_factory.getbasetemp() / "int8_models")


@pytest.fixture(scope="session")
def int8_models(tmp_path_factory) -> dict[str, Path]:
    return session_int8_models(tmp_path_factory)


def _cortex_m4_records(mlperf_dir: Path) -> list[dict]:
    return json.loads((mlperf_dir / "cortex-m4-instruction-counts.json").read_text())["records"]


# --- the planner -----------------------------------------------------------------------------


def test_greedy_plan_reuses_memory_of_dead_buffers():
    # a chain: 0 -> 1 -> 2; buffer 0 is dead when 2 is created, so 2 reuses its place.
    assert greedy_plan_bytes([64, 32, 64], [0, 1, 2], [1, 2, 2]) == 96
    # all alive at once: the sum.
    assert greedy_plan_bytes([64, 32, 64], [0, 0, 0], [2, 2, 2]) == 160
    assert greedy_plan_bytes([], [], []) == 0


def test_greedy_plan_order_and_first_fit():
    # Equal sizes: the buffer added last is placed first (at 0); the third buffer, alive only
    # at step 2, goes into the place of the first one (dead by then), above the second.
    assert greedy_plan_bytes([112, 112, 48], [0, 1, 2], [1, 2, 2]) == 224
    # Largest first: 96 (step 0) at 0, 64 (step 1) reuses offset 0, 32 (steps 0-1) above both.
    assert greedy_plan_bytes([96, 32, 64], [0, 0, 1], [0, 1, 1]) == 128


def test_arena_grows_with_activation_size():
    small, large = Graph("small"), Graph("large")
    for graph, side in ((small, 8), (large, 16)):
        x = graph.add_tensor("x", (1, side, side, 4))
        y = graph.add_tensor("y", (1, side // 2, side // 2, 4))
        graph.ops.append(Op("AVERAGE_POOL_2D", (x,), (y,), (2, 2), (2, 2), "VALID"))
        graph.inputs, graph.outputs = (x,), (y,)
    assert plan_bytes(large) - plan_bytes(small) == (16 * 16 * 4 + 8 * 8 * 4) - (8 * 8 * 4 + 4 * 4 * 4)
    assert tail_bytes(large, "host") == tail_bytes(small, "host")
    assert arena_bytes(small, "host") > arena_bytes(small, "cortex-m")


def test_equal_paddings_count_once():
    """The converter stores equal PAD paddings once; a graph repeating them is counted so."""
    graph = Graph("pads")
    x = graph.add_tensor("x", (1, 8, 8, 4))
    graph.inputs = (x,)
    for name in ("a", "b"):
        paddings = graph.add_tensor(f"{name}/paddings", (4, 2), "int32", is_constant=True, quant_channels=0)
        y = graph.add_tensor(f"{name}/out", (1, 9, 9, 4))
        graph.ops.append(Op("PAD", (x, paddings), (y,)))
        x = graph.add_tensor(f"{name}/pool", (1, 8, 8, 4))
        graph.ops.append(Op("AVERAGE_POOL_2D", (y,), (x,), (2, 2), (1, 1), "VALID"))
    graph.outputs = (x,)
    assert duplicate_constant_indices(graph) == {4}
    shared = Graph("pads", list(graph.tensors), [op if op.kind != "PAD" or op.inputs[1] != 4 else
                                                 Op("PAD", (op.inputs[0], 1), op.outputs) for op in graph.ops],
                   graph.inputs, graph.outputs)
    assert duplicate_constant_indices(shared) == set()
    # the unused tensor left in ``shared`` is one more TfLiteEvalTensor (24 B on the host, plus
    # alignment of what follows)
    assert 24 <= tail_bytes(shared, "host") - tail_bytes(graph, "host") <= 24 + 15


def test_unknown_target_is_rejected():
    with pytest.raises(ValueError, match="target"):
        arena_bytes(Graph("empty"), target="riscv")


# --- against the real interpreter ------------------------------------------------------------


def test_host_arena_equals_tflm_on_mlperf_models(mlperf_dir):
    from mcunas.tflm import measure_arena_bytes

    for name in MLPERF_MODELS:
        path = mlperf_dir / f"{name}.tflite"
        assert arena_bytes(read_tflite(path), "host", "reference") == measure_arena_bytes(path), name


def test_cortex_m_arena_matches_mlperf_measurements(mlperf_dir):
    errors = {}
    for record in _cortex_m4_records(mlperf_dir):
        graph = read_tflite(mlperf_dir / f"{record['model']}.tflite")
        predicted = arena_bytes(graph, "cortex-m", record["build"])
        errors[(record["model"], record["build"])] = predicted - record["arena_used_bytes"]
    assert errors and all(error == 0 for error in errors.values()), errors


def test_cortex_m_arena_matches_space_model_measurements(mlperf_dir):
    """The 32 measured 32-bit arenas of 16 space models (both kernel builds), their graphs
    from the architectures: within 16 bytes (the alignment step of the arena's persistent
    part), 28 of 32 exact."""
    from mcunas.spaces import get_space, load_arch

    latency_dir = mlperf_dir.parent / "latency"
    counts = json.loads((latency_dir / "space-instruction-counts.json").read_text())
    errors = {}
    for record in counts["records"]:
        arch = load_arch(latency_dir / "space-archs" / f"{record['model']}.json")
        graph = get_space(arch.space).graph(arch)
        predicted = arena_bytes(graph, "cortex-m", record["build"])
        errors[(record["model"], record["build"])] = predicted - record["arena_used_bytes"]
    assert len(errors) == 32
    assert all(abs(error) <= 16 for error in errors.values()), errors
    assert sum(error == 0 for error in errors.values()) >= 28, errors


def test_arena_pair_agrees_with_single_calls(mlperf_dir, int8_models):
    graphs = [read_tflite(mlperf_dir / "kws_ref_model.tflite"), read_tflite(int8_models["mean"])]
    for graph in graphs:
        for kernels in ("cmsis-nn", "reference"):
            expected = (arena_bytes(graph, "cortex-m", kernels), arena_bytes(graph, "host", "reference"))
            assert arena_bytes_pair(graph, kernels) == expected


# --- kernel rules (tflm_kernels) ---------------------------------------------------------------


def _conv_graph(kind: str, input_shape, weight_shape, output_shape, kernel, padding="SAME", stride=(1, 1)):
    graph = Graph(kind.lower())
    x = graph.add_tensor("x", input_shape)
    w = graph.add_tensor("w", weight_shape, is_constant=True, quant_channels=weight_shape[0 if kind == "CONV_2D" else 3])
    b = graph.add_tensor("b", (output_shape[-1],), "int32", is_constant=True, quant_channels=output_shape[-1])
    y = graph.add_tensor("y", output_shape)
    graph.ops.append(Op(kind, (x, w, b), (y,), kernel, stride, padding))
    graph.inputs, graph.outputs = (x,), (y,)
    return graph


def test_cmsis_nn_convolution_scratch_follows_the_get_buffer_size_functions():
    # arm_convolve_s8_get_buffer_size: 2 * align4(KH*KW*Cin) int16; 1 channel, 3x3: 9 -> 12
    stem = _conv_graph("CONV_2D", (1, 16, 16, 1), (8, 3, 3, 1), (1, 16, 16, 8), (3, 3))
    assert scratch_bytes(stem, 0, "cmsis-nn") == [2 * 12 * 2]
    assert scratch_bytes(stem, 0, "reference") == []
    audio = _conv_graph("CONV_2D", (1, 49, 10, 1), (16, 10, 4, 1), (1, 25, 5, 16), (10, 4), stride=(2, 2))
    assert scratch_bytes(audio, 0, "cmsis-nn") == [2 * 40 * 2]
    pointwise = _conv_graph("CONV_2D", (1, 8, 8, 16), (32, 1, 1, 16), (1, 8, 8, 32), (1, 1))
    assert scratch_bytes(pointwise, 0, "cmsis-nn") == []
    # depthwise: none for 3x3 with padding <= 1 and for depth multiplier > 1, else C*KH*KW int16
    dw3 = _conv_graph("DEPTHWISE_CONV_2D", (1, 8, 8, 6), (1, 3, 3, 6), (1, 8, 8, 6), (3, 3))
    dw5 = _conv_graph("DEPTHWISE_CONV_2D", (1, 8, 8, 6), (1, 5, 3, 6), (1, 8, 8, 6), (5, 3))
    dw_mult = _conv_graph("DEPTHWISE_CONV_2D", (1, 8, 8, 3), (1, 5, 5, 6), (1, 8, 8, 6), (5, 5))
    assert scratch_bytes(dw3, 0, "cmsis-nn") == []
    assert scratch_bytes(dw5, 0, "cmsis-nn") == [6 * 5 * 3 * 2]
    assert scratch_bytes(dw_mult, 0, "cmsis-nn") == []
    # the planner sees the scratch buffer of the op that requests it, at that op's step
    assert plan_bytes(dw5, "cmsis-nn") == plan_bytes(dw5, "reference") + 192


def test_mean_requests_fewer_scratch_buffers_on_the_32_bit_build():
    graph = Graph("mean")
    x = graph.add_tensor("x", (1, 4, 4, 32))
    axes = graph.add_tensor("axes", (2,), "int32", is_constant=True, quant_channels=0)
    y = graph.add_tensor("y", (1, 1, 1, 32))
    graph.ops.append(Op("MEAN", (x, axes), (y,)))
    graph.inputs, graph.outputs = (x,), (y,)
    assert scratch_bytes(graph, 0, "reference", "host") == [128, 16, 8]
    assert scratch_bytes(graph, 0, "reference", "cortex-m") == [128]


def test_live_bytes_per_op_sums_the_buffers_alive_at_each_step():
    graph = Graph("chain")
    x = graph.add_tensor("x", (1, 8, 8, 4))  # 256 B
    y = graph.add_tensor("y", (1, 4, 4, 4))  # 64 B
    z = graph.add_tensor("z", (1, 2, 2, 4))  # 16 B
    graph.ops.append(Op("AVERAGE_POOL_2D", (x,), (y,), (2, 2), (2, 2), "VALID"))
    graph.ops.append(Op("MAX_POOL_2D", (y,), (z,), (2, 2), (2, 2), "VALID"))
    graph.inputs, graph.outputs = (x,), (z,)
    assert live_bytes_per_op(graph, "host", "reference") == [256 + 64, 64 + 16]
    # CMSIS-NN's average pool asks for a C int32 scratch buffer (16 B) while it runs
    assert live_bytes_per_op(graph, "cortex-m", "cmsis-nn") == [256 + 64 + 16, 64 + 16]
    assert max(live_bytes_per_op(graph, "host", "reference")) <= plan_bytes(graph)
