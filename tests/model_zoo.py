"""Generator of small int8 (and int16x8) ``.tflite`` models that exercise every op kind mcunas models.

Keras (``tf_keras``) models converted with ``TFLiteConverter`` -- full-integer int8 with int8 or
float32 I/O, and 16x8 (int16 activations, int8 weights) -- plus PyTorch -> ONNX -> onnx2tf
exports. Shapes run from a few hundred bytes of arena to ~100 KB, with non-square inputs and
kernels, 1-channel (audio) inputs and models under 4 KB. Used by the tests (the generated files
live in pytest's temporary folder) and by ``benchmarks/arena_vs_tflm.py --generated``.

    python tests/model_zoo.py OUT_DIR          # write every model into OUT_DIR
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as tests/conftest.py: one Keras for the process
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class ZooModel:
    """One generated model: a zero-argument Keras builder and how to convert it.

    ``io``: ``"int8"`` (int8 input/output), ``"float"`` (float32 I/O: QUANTIZE first, DEQUANTIZE
    last, the converter's default) or ``"int16"`` (16x8 quantization with int16 I/O).
    """

    name: str
    build: Callable[[], object]
    io: str = "int8"
    # rewrite RESHAPE ops that only add or drop size-1 dimensions into EXPAND_DIMS / SQUEEZE
    # (the converter lowers tf.expand_dims and tf.squeeze to RESHAPE; TFLM runs all three)
    squeeze_reshapes: bool = False


def _keras_zoo() -> list[ZooModel]:
    import tensorflow as tf

    layers = tf.keras.layers

    def chain(input_shape, *stack, batch_size=1):
        inputs = x = tf.keras.Input(input_shape, batch_size=batch_size)
        for layer in stack:
            x = layer(x)
        return tf.keras.Model(inputs, x)

    def graph(input_shape, body):
        inputs = tf.keras.Input(input_shape, batch_size=1)
        return tf.keras.Model(inputs, body(inputs))

    lam = layers.Lambda
    const = tf.constant

    def residual(t):
        x = layers.Conv2D(8, 3, padding="same", activation="relu6")(t)
        y = layers.Conv2D(8, 1)(layers.DepthwiseConv2D(3, padding="same")(x))
        return layers.Add()([x, y])

    def broadcast_ops(t):
        x = layers.Conv2D(6, 1)(t)
        bias = const([[[[0.5, -0.25, 1.0, 0.1, -1.0, 0.3]]]])
        added = lam(lambda v: v + bias)(x)
        subtracted = lam(lambda v: v - tf.reduce_mean(v, axis=[1, 2], keepdims=True))(added)
        scaled = lam(lambda v: v * const([[[[1.5, 0.5, 2.0, 1.0, 0.75, 1.25]]]]))(subtracted)
        return lam(lambda v: v + tf.reduce_max(v, axis=[1, 2], keepdims=True))(scaled)  # ADD, broadcast

    def concat_pools(t):
        a = layers.MaxPooling2D((3, 2), strides=(2, 2), padding="same")(t)
        b = layers.AveragePooling2D((2, 2))(t)
        return layers.Concatenate()([a, layers.Conv2D(4, 1)(b)])

    def detection_head(t):
        x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(t)
        y = layers.MaxPooling2D(2)(x)
        up = layers.UpSampling2D(2, interpolation="nearest")(layers.Conv2D(8, 1)(y))
        merged = layers.Concatenate()([x, up])
        big = layers.UpSampling2D(2, interpolation="bilinear")(layers.Conv2D(4, 1)(merged))
        return layers.Conv2D(6, 1, activation="sigmoid")(big)

    def slices(t):
        x = layers.Conv2D(8, 1)(t)
        a = lam(lambda v: v[:, 1:7:2, 1:5, 2:6])(x)  # STRIDED_SLICE
        b = lam(lambda v: tf.slice(v, [0, 0, 1, 0], [1, 3, 4, 4]))(x)  # SLICE
        return layers.Concatenate()([a, b])

    def splits(t):
        x = layers.Conv2D(9, 1)(t)
        p, q, r = lam(lambda v: tf.split(v, 3, axis=-1))(x)  # SPLIT
        s, u = lam(lambda v: tf.split(v, [2, 7], axis=-1))(x)  # SPLIT_V
        return layers.Concatenate()([layers.Add()([p, q]), r, s, layers.Conv2D(3, 1)(u)])

    def stack_unstack(t):
        x = layers.Conv2D(4, 1)(t)
        parts = lam(lambda v: tf.unstack(v, axis=1))(x)  # UNPACK
        return lam(lambda vs: tf.stack(vs[::-1], axis=1))(parts)  # PACK

    def expand_squeeze(t):
        x = layers.Conv2D(6, 1)(t)
        x = layers.LeakyReLU(0.1)(layers.Reshape((4, 4, 1, 6))(x))  # -> EXPAND_DIMS
        return layers.Conv2D(3, 1)(layers.Reshape((4, 4, 6))(x))  # -> SQUEEZE

    def squeeze_expand(t):
        x = layers.Conv2D(5, (1, 3))(t)  # (1, 1, 6, 5)
        squeezed = lam(lambda v: tf.squeeze(v, axis=1))(x)  # SQUEEZE -> (1, 6, 5)
        return lam(lambda v: tf.expand_dims(v, 2))(layers.Dense(4)(squeezed))  # EXPAND_DIMS

    def activations(t):
        x = layers.Conv2D(8, 1)(t)
        a = layers.Activation("sigmoid")(x)
        b = layers.Activation("tanh")(x)
        # x * relu6(x + 3) / 6: the converter fuses it into HARD_SWISH
        c = lam(lambda v: v * tf.nn.relu6(v + 3.0) / 6.0)(x)
        return layers.Concatenate()([a, b, c])

    def leaky_prelu(t):
        x = layers.LeakyReLU(0.2)(layers.Conv2D(6, 3, padding="same")(t))
        return layers.PReLU(shared_axes=[1, 2])(layers.Conv2D(6, 1)(x))

    def reductions(t):
        x = layers.Conv2D(8, 3)(t)
        total = lam(lambda v: tf.reduce_sum(v, axis=[1, 2], keepdims=True))(x)  # SUM
        peak = lam(lambda v: tf.reduce_max(v, axis=[1, 2], keepdims=True))(x)  # REDUCE_MAX
        return layers.Concatenate()([total, peak])

    def classifier(t):
        x = layers.GlobalAveragePooling2D()(layers.Conv2D(12, 3, activation="relu")(t))
        logits = layers.Dense(5)(x)
        return layers.Concatenate()([layers.Softmax()(logits), lam(tf.nn.log_softmax)(logits)])

    def gather_argmax(t):
        x = layers.Conv2D(6, 1)(t)
        picked = lam(lambda v: tf.gather(v, [4, 0, 2], axis=-1))(x)  # GATHER
        return lam(lambda v: tf.argmax(v, axis=-1, output_type=tf.int32))(picked)  # ARG_MAX

    def transpose_block(t):
        x = layers.Conv2D(4, 1)(t)
        y = layers.Permute((2, 1, 3))(x)  # TRANSPOSE (H <-> W)
        return layers.Conv2D(4, (3, 1))(y)

    def transpose_conv(t):
        x = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(t)
        return layers.Conv2DTranspose(4, 3, strides=2, padding="same")(x)

    def audio(t):  # DS-CNN-like: 1-channel MFCC map, non-square stem kernel
        x = layers.Conv2D(16, (10, 4), strides=(2, 2), padding="same", activation="relu")(t)
        x = layers.DepthwiseConv2D((3, 3), padding="same", activation="relu")(x)
        x = layers.Conv2D(16, 1, activation="relu")(x)
        x = layers.AveragePooling2D((x.shape[1], x.shape[2]))(x)
        return layers.Softmax()(layers.Dense(6)(layers.Flatten()(x)))

    def autoencoder(t):  # MLPerf-Tiny-AD-like fully-connected stack
        x = t
        for units in (32, 8, 32):
            x = layers.Dense(units, activation="relu")(x)
        return layers.Dense(64)(x)

    def mobilenet_like(t):
        x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(t)
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
        return layers.Softmax()(layers.Dense(10)(x))

    def elementwise(t):
        product = layers.Multiply()([layers.Conv2D(8, 1)(t), layers.Conv2D(8, 1)(t)])
        joined = layers.Concatenate()([layers.Activation("sigmoid")(product), layers.ReLU()(t)])
        return lam(lambda v: v * tf.nn.relu6(v + 3.0) / 6.0)(joined)

    def int16_body(t):
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(t)
        x = layers.DepthwiseConv2D(3, padding="same")(x)
        x = layers.Add()([x, layers.Conv2D(8, 1)(t)])
        x = layers.Activation("tanh")(x)
        x = layers.MaxPooling2D(2)(layers.Activation("sigmoid")(x))
        return layers.Softmax()(layers.Dense(4)(layers.Flatten()(x)))

    def int16_upsample(t):
        x = layers.Conv2DTranspose(4, 3, strides=2, padding="same")(t)
        y = layers.UpSampling2D(2, interpolation="bilinear")(layers.Conv2D(4, 1)(t))
        z = layers.UpSampling2D(2)(layers.AveragePooling2D(1)(t))
        return layers.Concatenate()([x, y, lam(lambda v: tf.transpose(v, [0, 2, 1, 3]))(layers.Permute((2, 1, 3))(z))])

    models = [
        # the single-kind models of the original arena tests (names kept: other tests use them)
        ZooModel("conv", lambda: chain((8, 8, 3), layers.Conv2D(4, 3, activation="relu6"))),
        ZooModel("depthwise", lambda: chain((8, 8, 6), layers.DepthwiseConv2D(3, padding="same", activation="relu"))),
        ZooModel("fc_softmax", lambda: chain((20,), layers.Dense(7), layers.Softmax())),
        ZooModel("mean", lambda: chain((4, 4, 64), layers.GlobalAveragePooling2D())),
        ZooModel("avgpool", lambda: chain((8, 8, 4), layers.AveragePooling2D(2))),
        ZooModel("maxpool", lambda: chain((8, 8, 4), layers.Conv2D(4, 1), layers.MaxPooling2D(2))),
        ZooModel("pad_conv", lambda: chain((9, 9, 3), layers.ZeroPadding2D(((0, 1), (0, 1))), layers.Conv2D(6, 3, strides=2))),
        ZooModel("reshape_fc", lambda: chain((4, 4, 3), layers.Conv2D(5, 1), layers.Reshape((80,)), layers.Dense(6))),
        ZooModel("residual", lambda: graph((8, 8, 8), residual)),
        ZooModel("mobilenet_like", lambda: graph((16, 16, 3), mobilenet_like)),
        ZooModel("elementwise", lambda: graph((6, 6, 8), elementwise)),
        # convolution shapes: 1-channel, non-square kernels and inputs, 1xN, depth multiplier
        ZooModel("conv_1ch_10x4", lambda: chain((25, 10, 1), layers.Conv2D(8, (10, 4), strides=2, padding="same"))),
        ZooModel("conv_1xn", lambda: chain((1, 24, 6), layers.Conv2D(8, (1, 5)))),
        ZooModel("conv_nx1_large", lambda: chain((48, 40, 3), layers.Conv2D(8, (5, 1), strides=(2, 1), activation="relu"))),
        ZooModel("conv_1x1_wide", lambda: chain((12, 20, 16), layers.Conv2D(32, 1, activation="relu6"))),
        ZooModel("conv_3x3_128", lambda: chain((128, 128, 3), layers.Conv2D(8, 3, padding="same", activation="relu"))),
        ZooModel("conv_5x5_96", lambda: chain((96, 96, 3), layers.Conv2D(8, 5, strides=2, padding="same"))),
        ZooModel("depthwise_5x3", lambda: chain((10, 7, 8), layers.DepthwiseConv2D((5, 3), padding="same"))),
        ZooModel("depthwise_mult2", lambda: chain((9, 9, 3), layers.DepthwiseConv2D(3, depth_multiplier=2, strides=2))),
        ZooModel("depthwise_1ch", lambda: chain((16, 16, 1), layers.DepthwiseConv2D((3, 3), padding="same"))),
        ZooModel("audio_dscnn", lambda: graph((49, 10, 1), audio)),
        ZooModel("autoencoder", lambda: graph((64,), autoencoder)),
        # data movement and element-wise ops
        ZooModel("broadcast_add_sub_mul", lambda: graph((5, 7, 3), broadcast_ops)),
        ZooModel("concat_pools", lambda: graph((8, 6, 4), concat_pools)),
        ZooModel("detection_head", lambda: graph((16, 12, 3), detection_head)),
        ZooModel("slices", lambda: graph((8, 6, 3), slices)),
        ZooModel("splits", lambda: graph((4, 5, 3), splits)),
        ZooModel("stack_unstack", lambda: graph((3, 4, 2), stack_unstack)),
        ZooModel("squeeze_expand", lambda: graph((1, 8, 2), squeeze_expand)),
        ZooModel("expand_squeeze", lambda: graph((4, 4, 3), expand_squeeze), squeeze_reshapes=True),
        ZooModel("activations", lambda: graph((4, 4, 3), activations)),
        ZooModel("relu6", lambda: chain((4, 6, 3), layers.ReLU(6.0))),
        ZooModel("leaky_prelu", lambda: graph((6, 6, 2), leaky_prelu)),
        ZooModel("reductions", lambda: graph((7, 5, 3), reductions)),
        ZooModel("classifier", lambda: graph((8, 8, 1), classifier)),
        ZooModel("gather_argmax", lambda: graph((4, 4, 3), gather_argmax)),
        ZooModel("transpose", lambda: graph((6, 4, 3), transpose_block)),
        ZooModel("transpose_conv", lambda: graph((8, 8, 2), transpose_conv)),
        ZooModel("transpose_conv_valid", lambda: chain((5, 4, 3), layers.Conv2DTranspose(6, (3, 2), strides=(2, 1)))),
        # float32 I/O around an int8 body (QUANTIZE first, DEQUANTIZE last)
        ZooModel("float_io_conv", lambda: chain((8, 8, 3), layers.Conv2D(4, 3, activation="relu6")), io="float"),
        ZooModel("float_io_classifier", lambda: graph((8, 8, 1), classifier), io="float"),
        ZooModel("float_io_detection", lambda: graph((16, 12, 3), detection_head), io="float"),
        ZooModel("float_io_audio", lambda: graph((49, 10, 1), audio), io="float"),
        # int16 activations, int8 weights (16x8)
        ZooModel("int16_body", lambda: graph((6, 6, 2), int16_body), io="int16"),
        ZooModel("int16_fc_softmax", lambda: chain((20,), layers.Dense(7), layers.Softmax()), io="int16"),
        ZooModel("int16_upsample_concat", lambda: graph((6, 4, 3), int16_upsample), io="int16"),
        ZooModel("int16_mean_pad", lambda: chain((6, 6, 4), layers.ZeroPadding2D(1), layers.Conv2D(4, 3), layers.GlobalAveragePooling2D()), io="int16"),
    ]
    return models


def _representative(shape: tuple[int, ...]):
    import numpy as np

    rng = np.random.default_rng(0)

    def samples():
        for _ in range(8):
            yield [rng.standard_normal((1, *shape)).astype(np.float32)]

    return samples


def convert(model, io: str) -> bytes:
    """Full-integer conversion of a Keras model (see :class:`ZooModel` for ``io``)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(tuple(model.input_shape[1:]))
    if io == "int16":
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [ops]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":
            converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def write_keras_models(out_dir: Path, names: set[str] | None = None) -> dict[str, Path]:
    """Build and convert the Keras models (all, or those in ``names``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entry in _keras_zoo():
        if names is not None and entry.name not in names:
            continue
        path = out_dir / f"{entry.name}.tflite"
        data = convert(entry.build(), entry.io)
        path.write_bytes(squeeze_reshapes(data) if entry.squeeze_reshapes else data)
        paths[entry.name] = path
    return paths


def squeeze_reshapes(data: bytes) -> bytes:
    """The model ``data`` with each RESHAPE that only inserts size-1 dimensions made an
    EXPAND_DIMS (axis as a new int32 constant) and each that only drops them a SQUEEZE."""
    import flatbuffers
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    graph = model.subgraphs[0]
    codes = model.operatorCodes

    def code_index(builtin: int) -> int:
        for index, code in enumerate(codes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
                return index
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        codes.append(code)
        return len(codes) - 1

    reshape = schema.BuiltinOperator.RESHAPE
    for op in graph.operators:
        if max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode) != reshape:
            continue
        before = [int(d) for d in graph.tensors[op.inputs[0]].shape]
        after = [int(d) for d in graph.tensors[op.outputs[0]].shape]
        if len(after) == len(before) + 1:
            axis = next(i for i in range(len(after)) if after[:i] + after[i + 1:] == before)
            buffer = schema.BufferT()
            buffer.data = np.array([axis], np.int32).view(np.uint8)
            model.buffers.append(buffer)
            tensor = schema.TensorT()
            tensor.shape, tensor.type, tensor.name = np.array([], np.int32), schema.TensorType.INT32, b"axis"
            tensor.buffer = len(model.buffers) - 1
            graph.tensors.append(tensor)
            op.opcodeIndex = code_index(schema.BuiltinOperator.EXPAND_DIMS)
            op.inputs = np.array([op.inputs[0], len(graph.tensors) - 1], np.int32)
            op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.ExpandDimsOptions, schema.ExpandDimsOptionsT()
        elif len(after) + 1 == len(before):
            axis = next(i for i in range(len(before)) if before[:i] + before[i + 1:] == after)
            options = schema.SqueezeOptionsT()
            options.squeezeDims = [axis]
            op.opcodeIndex = code_index(schema.BuiltinOperator.SQUEEZE)
            op.inputs = np.array([op.inputs[0]], np.int32)
            op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.SqueezeOptions, options
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ----------------------------------------------------------------------------- PyTorch -> onnx2tf


def _torch_modules():
    import torch
    from torch import nn

    class Upsampler(nn.Module):
        """A detection-style neck: stride-2 conv, max pool, nearest upsampling, concatenation."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, 2, 1)
            self.pool = nn.MaxPool2d(2)
            self.lateral = nn.Conv2d(8, 8, 1)
            self.head = nn.Conv2d(16, 5, 1)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            up = nn.functional.interpolate(self.lateral(self.pool(x)), scale_factor=2, mode="nearest")
            return torch.sigmoid(self.head(torch.cat([x, up], dim=1)))

    class AudioNet(nn.Module):
        """1-channel input with a non-square kernel, hard-swish, global pooling, classifier."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, (5, 3), (2, 1))
            self.depthwise = nn.Conv2d(8, 8, 3, 1, 1, groups=8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = nn.functional.hardswish(self.conv(x))
            x = torch.relu(self.depthwise(x)).mean(dim=(2, 3))
            return torch.softmax(self.fc(x), dim=1)

    return {"onnx2tf_upsampler": (Upsampler(), (1, 3, 16, 16)), "onnx2tf_audio": (AudioNet(), (1, 1, 20, 10))}


def write_onnx2tf_models(out_dir: Path, keep_nchw: tuple[str, ...] = ("onnx2tf_upsampler",)) -> dict[str, Path]:
    """Export the PyTorch modules through ONNX and onnx2tf, then to int8 TFLite (int8 I/O).

    As ``mcunas.export`` does: onnx2tf builds the Keras model, ``TFLiteConverter`` quantizes it.
    Modules named in ``keep_nchw`` keep their NCHW input (onnx2tf's
    ``keep_ncw_or_nchw_or_ncdhw_input_names``), so the model starts with a TRANSPOSE, as files of
    other PyTorch exporters do. Each export takes a few seconds (onnx2tf runs in this process,
    in a temporary working folder under ``out_dir``).
    """
    import onnx2tf
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (module, shape) in _torch_modules().items():
        torch.manual_seed(0)
        work = out_dir / f"{name}_work"
        work.mkdir(exist_ok=True)
        onnx_path = work / "model.onnx"
        torch.onnx.export(module.eval(), torch.randn(shape), onnx_path, input_names=["input"],
                          output_names=["output"], opset_version=17, dynamo=False)
        cwd = os.getcwd()
        os.chdir(work)  # onnx2tf writes into the working directory
        try:
            keras_model = onnx2tf.convert(
                input_onnx_file_path=str(onnx_path),
                output_folder_path=str(work / "onnx2tf"),
                disable_model_save=True,
                keep_ncw_or_nchw_or_ncdhw_input_names=["input"] if name in keep_nchw else None,
                non_verbose=True,
            )
        finally:
            os.chdir(cwd)
        path = out_dir / f"{name}.tflite"
        path.write_bytes(convert(keras_model, "int8"))
        paths[name] = path
    return paths


def write_all(out_dir: Path) -> dict[str, Path]:
    """Every generated model (Keras and onnx2tf) in ``out_dir``; name -> path."""
    return {**write_keras_models(out_dir), **write_onnx2tf_models(out_dir)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/model_zoo.py OUT_DIR")
    for model_name, model_path in write_all(Path(sys.argv[1])).items():
        print(f"{model_name}: {model_path} ({model_path.stat().st_size} bytes)")
