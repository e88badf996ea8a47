"""The .tflite importer on the MLPerf Tiny models, on TensorFlow-made models, and on bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcunas.errors import ModelFormatError
from mcunas.graph.tflite import SUPPORTED_OPS, ImportedGraph, read_tflite

# Multiply-accumulates derived by hand from the published architectures (mlcommons/tiny):
# DS-CNN: conv 10x4/2 1->64 on 25x5 (320,000) + 4 x (dw 3x3 on 25x5x64: 72,000 and
# pw 64->64: 512,000) + FC 64->12 (768).
KWS_MACS = 320_000 + 4 * (72_000 + 512_000) + 768
# ResNet-8: stem 3x3 3->16 at 32x32, 2 x 3x3 16->16 at 32x32, [3x3/2, 3x3, 1x1/2 shortcut] to
# 32 at 16x16 and to 64 at 8x8, FC 64->10.
RESNET_MACS = (
    32 * 32 * 16 * 27
    + 2 * 32 * 32 * 16 * 144
    + 16 * 16 * 32 * (144 + 288 + 16)
    + 8 * 8 * 64 * (288 + 576 + 32)
    + 64 * 10
)
# FC autoencoder: 640-128-128-128-128-8-128-128-128-128-640.
AD_MACS = 2 * 640 * 128 + 6 * 128 * 128 + 2 * 128 * 8


def test_schema_codes_match_the_tflite_schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    for code, name in SUPPORTED_OPS.items():
        assert getattr(schema.BuiltinOperator, name) == code


def test_kws_graph(mlperf_dir):
    graph = read_tflite(mlperf_dir / "kws_ref_model.tflite")
    assert isinstance(graph, ImportedGraph)
    assert graph.file_bytes == (mlperf_dir / "kws_ref_model.tflite").stat().st_size
    assert [op.kind for op in graph.ops] == (
        ["CONV_2D"]
        + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4
        + ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    )
    stem = graph.ops[0]
    assert (stem.kernel, stem.stride, stem.padding, stem.activation) == ((10, 4), (2, 2), "SAME", "RELU")
    assert graph.tensors[graph.inputs[0]].shape == (1, 49, 10, 1)
    assert graph.tensors[graph.outputs[0]].shape == (1, 12)
    assert graph.tensors[stem.inputs[1]].quant_channels == 64
    assert graph.tensors[stem.inputs[1]].is_constant and not graph.tensors[stem.outputs[0]].is_constant
    pool = graph.ops[9]
    assert (pool.kernel, pool.stride, pool.padding) == ((25, 5), (25, 5), "VALID")
    assert graph.macs == KWS_MACS
    assert len(graph.buffer_bytes) == len(graph.tensors)


def test_macs_of_the_other_mlperf_models(mlperf_dir):
    assert read_tflite(mlperf_dir / "pretrainedResnet_quant.tflite").macs == RESNET_MACS
    ad = read_tflite(mlperf_dir / "ad01_int8.tflite")
    assert ad.macs == AD_MACS and ad.op_kinds() == ["FULLY_CONNECTED"]
    vww = read_tflite(mlperf_dir / "vww_96_int8.tflite")
    assert vww.tensors[vww.inputs[0]].shape == (1, 96, 96, 3)
    # MobileNetV1 0.25 at 96x96: about 7.5 M MACs, 14 3x3 convolutions (1 full + 13 depthwise).
    assert 7.4e6 < vww.macs < 7.6e6
    assert sum(op.kind == "DEPTHWISE_CONV_2D" for op in vww.ops) == 13


def test_generated_model_options(tmp_path_factory):
    from test_memory import session_int8_models

    models = session_int8_models(tmp_path_factory)
    pad_conv = read_tflite(models["pad_conv"])
    assert [op.kind for op in pad_conv.ops] == ["PAD", "CONV_2D"]
    conv = pad_conv.ops[1]
    assert (conv.stride, conv.padding, conv.kernel) == ((2, 2), "VALID", (3, 3))
    assert conv.macs == 4 * 4 * 6 * 3 * 3 * 3
    mean = read_tflite(models["mean"])
    assert mean.op_kinds() == ["MEAN"] and mean.macs == 0


def _tensorflow_model(path: Path, quantize: bool, activation: str) -> Path:
    import numpy as np
    import tensorflow as tf

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    inputs = tf.keras.Input((8,), batch_size=1)
    model = tf.keras.Model(inputs, tf.keras.layers.Activation(activation)(tf.keras.layers.Dense(4)(inputs)))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.full((1, 8), v, np.float32)] for v in (-1.0, 1.0))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def test_float_model_is_rejected(tmp_path):
    path = _tensorflow_model(tmp_path / "float.tflite", quantize=False, activation="relu")
    with pytest.raises(ModelFormatError, match="float32 model.*full-integer quantization"):
        read_tflite(path)


def test_unsupported_op_is_named(tmp_path):
    path = _tensorflow_model(tmp_path / "tanh.tflite", quantize=True, activation="tanh")
    with pytest.raises(ModelFormatError, match=r"operator 1 has builtin code 28"):
        read_tflite(path)


def test_not_a_flatbuffer(tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"this is not a model at all")
    with pytest.raises(ModelFormatError, match="not a TFLite flatbuffer"):
        read_tflite(garbage)
    with pytest.raises(ModelFormatError, match="no such"):
        read_tflite(tmp_path / "missing.tflite")


def test_truncated_file(tmp_path, mlperf_dir):
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes((mlperf_dir / "kws_ref_model.tflite").read_bytes()[:2000])
    with pytest.raises(ModelFormatError, match="truncated.tflite"):
        read_tflite(truncated)
