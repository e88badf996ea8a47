"""The .tflite importer on the MLPerf Tiny models, on TensorFlow-made models, and on bad input.

Bad input is made by editing generated files with the TFLite schema's object API (an op code
swapped for SVDF or a custom op, a second subgraph, a tensor type): each is one line that names
the op or tensor.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcunas.errors import ModelFormatError
from mcunas.graph.tflite import INT16_OPS, SUPPORTED_OPS, ImportedGraph, read_tflite
from mcunas.graph.tflite_schema import BUILTIN_OPERATOR_NAMES

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


def test_schema_names_match_the_tflite_schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    for code, name in enumerate(BUILTIN_OPERATOR_NAMES):
        assert getattr(schema.BuiltinOperator, name) == code
    assert SUPPORTED_OPS <= set(BUILTIN_OPERATOR_NAMES) and INT16_OPS < SUPPORTED_OPS


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


def test_float_io_around_an_int8_body(tmp_path_factory):
    from test_memory import session_int8_models

    graph = read_tflite(session_int8_models(tmp_path_factory)["float_io_classifier"])
    kinds = [op.kind for op in graph.ops]
    assert kinds[0] == "QUANTIZE" and kinds[-1] == "DEQUANTIZE" and "LOG_SOFTMAX" in kinds
    assert graph.tensors[graph.inputs[0]].dtype == graph.tensors[graph.outputs[0]].dtype == "float32"


def test_transpose_conv_options_and_macs(tmp_path_factory):
    from test_memory import session_int8_models

    graph = read_tflite(session_int8_models(tmp_path_factory)["transpose_conv_valid"])
    (op,) = graph.ops
    assert (op.kind, op.kernel, op.stride, op.padding) == ("TRANSPOSE_CONV", (3, 2), (2, 1), "VALID")
    assert op.macs == 5 * 4 * 3 * (3 * 2) * 6  # every input pixel over the kernel, to 6 channels


def _edited(source: Path, out: Path, edit) -> Path:
    """``source`` with ``edit(model)`` applied to its object-API model, written to ``out``."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    edit(model, schema)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out.write_bytes(bytes(builder.Output()))
    return out


def _set_code(model, code: int, custom: bytes | None = None) -> None:
    opcode = model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex]
    opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.customCode = code, min(code, 127), custom


def _one_line_error(path: Path) -> str:
    with pytest.raises(ModelFormatError) as caught:
        read_tflite(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    from test_memory import session_int8_models

    return session_int8_models(tmp_path_factory)["conv"]


def test_unsupported_op_is_named(conv_model, tmp_path):
    svdf = _edited(conv_model, tmp_path / "svdf.tflite", lambda m, s: _set_code(m, s.BuiltinOperator.SVDF))
    message = _one_line_error(svdf)
    assert "operator 0 is SVDF, an op mcunas does not model" in message and "builtin code" not in message
    custom = _edited(
        conv_model, tmp_path / "custom.tflite",
        lambda m, s: _set_code(m, s.BuiltinOperator.CUSTOM, b"TFLite_Detection_PostProcess"),
    )
    assert "operator 0 is custom op 'TFLite_Detection_PostProcess'" in _one_line_error(custom)


def test_several_subgraphs_are_rejected(conv_model, tmp_path):
    import copy

    def add_subgraph(model, schema):
        model.subgraphs.append(copy.deepcopy(model.subgraphs[0]))
        _set_code(model, schema.BuiltinOperator.WHILE)

    message = _one_line_error(_edited(conv_model, tmp_path / "while.tflite", add_subgraph))
    assert "2 subgraphs" in message and "operator 0 WHILE" in message


def test_unknown_tensor_type_is_named(conv_model, tmp_path):
    def to_string(model, schema):
        model.subgraphs[0].tensors[0].type = schema.TensorType.STRING

    message = _one_line_error(_edited(conv_model, tmp_path / "string.tflite", to_string))
    assert "tensor 0" in message and "type string" in message


def _float_model(path: Path) -> Path:
    """A float32 model (no quantization): Dense + ReLU."""
    import tensorflow as tf

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    inputs = tf.keras.Input((8,), batch_size=1)
    model = tf.keras.Model(inputs, tf.keras.layers.ReLU()(tf.keras.layers.Dense(4)(inputs)))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_float_model_body_is_rejected(tmp_path):
    path = _float_model(tmp_path / "float.tflite")
    message = _one_line_error(path)
    assert "float32 model body: operator 0 FULLY_CONNECTED reads float32 tensor 0" in message
    assert "full-integer quantization" in message


def test_int16_into_an_int8_only_kernel_is_rejected(tmp_path):
    import tensorflow as tf
    from model_zoo import convert

    inputs = tf.keras.Input((4, 4, 6), batch_size=1)
    gather = tf.keras.layers.Lambda(lambda v: tf.gather(v, [2, 0], axis=-1))(inputs)
    path = tmp_path / "gather16.tflite"
    path.write_bytes(convert(tf.keras.Model(inputs, gather), "int16"))
    assert "GATHER kernel runs int8 activations" in _one_line_error(path)


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
