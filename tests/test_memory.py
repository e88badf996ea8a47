"""Arena model vs the real TFLite Micro interpreter.

Ground truth: the host (64-bit, reference kernels) interpreter of the ``tflite-micro`` package on
small int8 models built here with TensorFlow (one op kind each, plus a MobileNetV2-like chain)
and on the MLPerf Tiny models; the 32-bit arenas of the MLPerf Tiny models measured on a
Cortex-M4 build (``cortex-m4-instruction-counts.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcunas.estimators.memory import (
    arena_bytes,
    arena_bytes_pair,
    duplicate_constant_indices,
    greedy_plan_bytes,
    plan_bytes,
    tail_bytes,
)
from mcunas.graph.ir import Graph, Op
from mcunas.graph.tflite import read_tflite

MLPERF_MODELS = ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")

_BUILT: dict[str, dict[str, Path]] = {}


def _keras_models():
    """name -> zero-argument builder of a small float Keras model (batch size 1)."""
    import tensorflow as tf

    layers = tf.keras.layers

    def chain(input_shape, *stack):
        inputs = x = tf.keras.Input(input_shape, batch_size=1)
        for layer in stack:
            x = layer(x)
        return tf.keras.Model(inputs, x)

    def residual():
        inputs = tf.keras.Input((8, 8, 8), batch_size=1)
        x = layers.Conv2D(8, 3, padding="same", activation="relu6")(inputs)
        y = layers.Conv2D(8, 1)(layers.DepthwiseConv2D(3, padding="same")(x))
        return tf.keras.Model(inputs, layers.Add()([x, y]))

    def mobilenet_like():
        inputs = tf.keras.Input((16, 16, 3), batch_size=1)
        x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inputs)
        for channels, expansion, stride in [(8, 1, 1), (16, 4, 2), (16, 4, 1), (24, 3, 2)]:
            c_in = x.shape[-1]
            y = layers.Conv2D(c_in * expansion, 1, activation="relu6")(x) if expansion > 1 else x
            if stride == 2:
                y = layers.ZeroPadding2D(((0, 1), (0, 1)))(y)
            padding = "valid" if stride == 2 else "same"
            y = layers.DepthwiseConv2D(3, strides=stride, padding=padding, activation="relu6")(y)
            y = layers.Conv2D(channels, 1)(y)
            x = layers.Add()([x, y]) if stride == 1 and c_in == channels else y
        x = layers.GlobalAveragePooling2D()(x)
        return tf.keras.Model(inputs, layers.Softmax()(layers.Dense(10)(x)))

    def elementwise():
        inputs = tf.keras.Input((6, 6, 8), batch_size=1)
        product = layers.Multiply()([layers.Conv2D(8, 1)(inputs), layers.Conv2D(8, 1)(inputs)])
        joined = layers.Concatenate()([layers.Activation("sigmoid")(product), layers.ReLU()(inputs)])
        # x * relu6(x + 3) / 6: the converter fuses it into HARD_SWISH (tf_keras has no "hard_swish" name).
        return tf.keras.Model(inputs, layers.Activation(lambda t: t * tf.nn.relu6(t + 3.0) / 6.0)(joined))

    return {
        "conv": lambda: chain((8, 8, 3), layers.Conv2D(4, 3, activation="relu6")),
        "depthwise": lambda: chain((8, 8, 6), layers.DepthwiseConv2D(3, padding="same", activation="relu")),
        "fc_softmax": lambda: chain((20,), layers.Dense(7), layers.Softmax()),
        "mean": lambda: chain((4, 4, 64), layers.GlobalAveragePooling2D()),
        "avgpool": lambda: chain((8, 8, 4), layers.AveragePooling2D(2)),
        "maxpool": lambda: chain((8, 8, 4), layers.Conv2D(4, 1), layers.MaxPooling2D(2)),
        "pad_conv": lambda: chain((9, 9, 3), layers.ZeroPadding2D(((0, 1), (0, 1))), layers.Conv2D(6, 3, strides=2)),
        "reshape_fc": lambda: chain((4, 4, 3), layers.Conv2D(5, 1), layers.Reshape((80,)), layers.Dense(6)),
        "residual": residual,
        "mobilenet_like": mobilenet_like,
        "elementwise": elementwise,
    }


def _convert_int8(model, path: Path) -> None:
    import numpy as np
    import tensorflow as tf

    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.standard_normal((1, *shape)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())


def write_int8_models(out_dir: Path) -> dict[str, Path]:
    """Build and convert the small models (full-integer int8) into ``out_dir``; name -> path.

    Cached per directory for the session (TensorFlow conversion takes about a second each).
    """
    key = str(out_dir)
    if key not in _BUILT:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, build in _keras_models().items():
            paths[name] = out_dir / f"{name}.tflite"
            _convert_int8(build(), paths[name])
        _BUILT[key] = paths
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


def test_host_arena_equals_tflm_on_generated_models(int8_models):
    from mcunas.tflm import measure_arena_bytes

    mismatches = {}
    for name, path in int8_models.items():
        measured = measure_arena_bytes(path)
        predicted = arena_bytes(read_tflite(path), "host", "reference")
        if abs(predicted - measured) > 16:
            mismatches[name] = (predicted, measured)
    assert not mismatches, f"predicted vs measured host arena: {mismatches}"


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
    assert all(abs(error) <= 16 for error in errors.values()), errors
    exact = [key for key, error in errors.items() if error == 0]
    assert len(exact) >= 7, errors


def test_arena_pair_agrees_with_single_calls(mlperf_dir, int8_models):
    graphs = [read_tflite(mlperf_dir / "kws_ref_model.tflite"), read_tflite(int8_models["mean"])]
    for graph in graphs:
        for kernels in ("cmsis-nn", "reference"):
            expected = (arena_bytes(graph, "cortex-m", kernels), arena_bytes(graph, "host", "reference"))
            assert arena_bytes_pair(graph, kernels) == expected
