"""Size of an imported model's ``.tflite`` file, replayed with the flatbuffers builder.

:func:`layout_bytes` rebuilds the flatbuffer of an :class:`~mcunas.graph.tflite.ImportedGraph`
from what the graph holds -- tensors (shape, type, name, quantization channels, min/max arrays,
shape signature, constant-buffer bytes, shared buffers), operators (kind, inputs, outputs and
the option values the IR keeps or the shapes imply), the description, metadata and signature
definitions -- with the TFLite schema's generated object API (``schema_py_generated`` of the
``tflite-micro`` package) and the ``flatbuffers`` builder, and returns the packed length. The
builder places tables, vtables (shared when equal), vectors, strings and buffer data
(:func:`mcunas.graph.tflite_pack.pack_model`) as the TFLite converter's C++ builder does: packing a converter's own file back through the
object API gives its exact size for the TensorFlow 2.21 converter (within 0.6 % for the older
MLPerf Tiny files). What the IR does not keep is filled with the converter's usual values (the
schema version 3, operator-code version 2, zero weights, option fields
such as a concatenation axis or a resize's ``half_pixel_centers`` from the shapes or the
converter's defaults); measured on the generated models of ``tests/model_zoo.py``, the MLPerf Tiny
files and space exports: within 1 % (see ``benchmarks/RESULTS.md``).

Cost: a few milliseconds for a MobileNet (the builder is pure Python), so the search spaces'
graphs use the closed-form model of :mod:`mcunas.estimators.flash` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcunas.graph.tflite_pack import pack_model
from mcunas.graph.tflite_schema import BUILTIN_OPERATOR_NAMES, TENSOR_TYPE_NAMES

if TYPE_CHECKING:
    from mcunas.graph.ir import Graph, Op
    from mcunas.graph.tflite import ImportedGraph

_OPERATOR_CODES = {name: code for code, name in enumerate(BUILTIN_OPERATOR_NAMES)}
_TENSOR_TYPES = {name: code for code, name in TENSOR_TYPE_NAMES.items()}
_PADDING = {"SAME": 0, "VALID": 1}
_ACTIVATION = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4, "SIGN_BIT": 5}
# What the TFLite converter writes that the IR does not keep.
_SCHEMA_VERSION = 3
_OPERATOR_CODE_VERSION = 2
_LEAKY_RELU_ALPHA = 0.2  # any non-default float: the field is written


def layout_bytes(graph: ImportedGraph) -> int:
    """Packed size (bytes) of the flatbuffer rebuilt from ``graph`` (see the module docstring)."""
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT()
    model.version = _SCHEMA_VERSION
    model.description = graph.description.encode("utf-8") or None  # "": the file has none
    kinds = list(dict.fromkeys(op.kind for op in graph.ops))  # operator codes in order of first use
    model.operatorCodes = []
    for kind in kinds:
        code = schema.OperatorCodeT()
        code.builtinCode = _OPERATOR_CODES[kind]
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = _OPERATOR_CODE_VERSION
        model.operatorCodes.append(code)

    buffers = [schema.BufferT()]  # buffer 0: the empty sentinel
    depthwise_weights = {op.inputs[1] for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D"}
    subgraph = schema.SubGraphT()
    subgraph.name = graph.subgraph_name.encode("utf-8") or None
    subgraph.tensors = []
    for index, tensor in enumerate(graph.tensors):
        packed = schema.TensorT()
        packed.shape = np.array(tensor.shape, np.int32)
        packed.type = _TENSOR_TYPES[tensor.dtype]
        packed.name = tensor.name.encode("utf-8") or None  # converters name every tensor; "": stripped
        packed.hasRank = True
        if graph.sentinel_buffer[index]:
            packed.buffer = 0  # no buffer of its own (a stripped file's activations)
        elif graph.shared_buffer[index]:
            packed.buffer = 1  # stored once by an earlier tensor: no buffer of its own
        else:
            buffer = schema.BufferT()
            if tensor.is_constant:
                buffer.data = np.zeros(graph.buffer_bytes[index], np.uint8)
            buffers.append(buffer)
            packed.buffer = len(buffers) - 1
        quantization = schema.QuantizationParametersT()
        if tensor.quant_channels:
            quantization.scale = [1.0] * tensor.quant_channels
            quantization.zeroPoint = [0] * tensor.quant_channels
            if index in depthwise_weights:
                quantization.quantizedDimension = 3
        if graph.minmax_channels[index]:
            quantization.min = [0.0] * graph.minmax_channels[index]
            quantization.max = [0.0] * graph.minmax_channels[index]
        packed.quantization = quantization
        if graph.shape_signatures[index]:
            packed.shapeSignature = np.array(tensor.shape, np.int32)
        subgraph.tensors.append(packed)
    subgraph.inputs = np.array(graph.inputs, np.int32)
    subgraph.outputs = np.array(graph.outputs, np.int32)
    subgraph.operators = []
    for op in graph.ops:
        packed_op = schema.OperatorT()
        packed_op.opcodeIndex = kinds.index(op.kind)
        packed_op.inputs = np.array(op.inputs, np.int32)
        packed_op.outputs = np.array(op.outputs, np.int32)
        packed_op.builtinOptionsType, packed_op.builtinOptions = _options(schema, graph, op)
        subgraph.operators.append(packed_op)
    model.subgraphs = [subgraph]

    model.metadata = []
    for name, nbytes in graph.metadata.items():
        buffer = schema.BufferT()
        buffer.data = np.zeros(nbytes, np.uint8)
        buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name.encode("utf-8")
        entry.buffer = len(buffers) - 1
        model.metadata.append(entry)
    model.metadata = model.metadata or None  # a stripped file has no metadata vector
    model.buffers = buffers
    if graph.signatures:
        model.signatureDefs = [_signature(schema, graph, key, names) for key, names in graph.signatures]

    return len(pack_model(model))


def _signature(schema: Any, graph: Graph, key: str, names: tuple[str, ...]) -> Any:
    """A SignatureDef: its tensor maps name the graph inputs, then the outputs."""
    signature = schema.SignatureDefT()
    signature.signatureKey = key.encode("utf-8")
    maps = []
    for name, index in zip(names, list(graph.inputs) + list(graph.outputs)):
        tensor_map = schema.TensorMapT()
        tensor_map.name = name.encode("utf-8")
        tensor_map.tensorIndex = index
        maps.append(tensor_map)
    signature.inputs = maps[: len(graph.inputs)]
    signature.outputs = maps[len(graph.inputs) :]
    return signature


def _axis_of(graph: Graph, op: Op) -> int:
    """The axis along which CONCATENATION joins its inputs (-1 for the last, as converters write)."""
    tensors = graph.tensors
    output = tensors[op.outputs[0]].shape
    shapes = [tensors[i].shape for i in op.inputs]
    for axis in range(len(output)):
        if sum(shape[axis] for shape in shapes) == output[axis]:
            return -1 if axis == len(output) - 1 else axis
    return -1


def _size_axis(shape: tuple[int, ...], size: int) -> int:
    """The first axis of ``shape`` of ``size`` (PACK/UNPACK axis)."""
    return next((axis for axis, dim in enumerate(shape) if dim == size), 0)


# The BuiltinOptions table of each kind with options (schema.fbs names; ``<name>T`` is its
# object-API class).
_OPTIONS_TABLES = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "SUB": "SubOptions",
    "MUL": "MulOptions",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "CONCATENATION": "ConcatenationOptions",
    "SOFTMAX": "SoftmaxOptions",
    "LOG_SOFTMAX": "LogSoftmaxOptions",
    "PAD": "PadOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "SQUEEZE": "SqueezeOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "SPLIT": "SplitOptions",
    "SPLIT_V": "SplitVOptions",
    "PACK": "PackOptions",
    "UNPACK": "UnpackOptions",
    "GATHER": "GatherOptions",
    "ARG_MAX": "ArgMaxOptions",
    "LEAKY_RELU": "LeakyReluOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
}


def _options(schema: Any, graph: Graph, op: Op) -> tuple[int, Any]:
    """(BuiltinOptions type, options object) of ``op`` with the values the graph implies; fields
    not set stay at their schema defaults (and are not written)."""
    kind = op.kind
    name = _OPTIONS_TABLES.get(kind)
    if name is None:
        return 0, None
    options = getattr(schema, name + "T")()
    tensors = graph.tensors
    activation = _ACTIVATION.get(op.activation, 0)
    int16 = tensors[op.inputs[2 if kind == "TRANSPOSE_CONV" else 0]].dtype == "int16"  # the activation input
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
        options.padding = _PADDING[op.padding or "SAME"]
        options.strideH, options.strideW = op.stride or (1, 1)
        options.fusedActivationFunction = activation
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and op.dilation:
        options.dilationHFactor, options.dilationWFactor = op.dilation
    if kind == "DEPTHWISE_CONV_2D":
        options.depthMultiplier = tensors[op.outputs[0]].shape[-1] // tensors[op.inputs[0]].shape[-1]
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        options.filterHeight, options.filterWidth = op.kernel or (1, 1)
    elif kind == "FULLY_CONNECTED":
        options.fusedActivationFunction = activation
        options.keepNumDims = len(tensors[op.outputs[0]].shape) > 2
        options.quantizedBiasType = _TENSOR_TYPES["int64"] if int16 else 0
    elif kind in ("ADD", "SUB", "MUL", "CONCATENATION"):
        options.fusedActivationFunction = activation
        if kind in ("ADD", "SUB") and int16:
            options.potScaleInt16 = False
        if kind == "CONCATENATION":
            options.axis = _axis_of(graph, op)
    elif kind in ("MEAN", "SUM", "REDUCE_MAX"):
        options.keepDims = len(tensors[op.outputs[0]].shape) == len(tensors[op.inputs[0]].shape)
    elif kind == "SOFTMAX":
        options.beta = 1.0
    elif kind == "SQUEEZE":
        before, after = tensors[op.inputs[0]].shape, tensors[op.outputs[0]].shape
        options.squeezeDims = [axis for axis, dim in enumerate(before) if dim == 1][: len(before) - len(after)]
    elif kind in ("SPLIT", "SPLIT_V"):
        options.numSplits = len(op.outputs)
    elif kind == "PACK":
        options.valuesCount = len(op.inputs)
        options.axis = _size_axis(tensors[op.outputs[0]].shape, len(op.inputs))
    elif kind == "UNPACK":
        options.num = len(op.outputs)
        options.axis = _size_axis(tensors[op.inputs[0]].shape, len(op.outputs))
    elif kind == "GATHER":
        options.axis = len(tensors[op.inputs[0]].shape) - 1
    elif kind == "ARG_MAX":
        options.outputType = _TENSOR_TYPES[tensors[op.outputs[0]].dtype]
    elif kind == "LEAKY_RELU":
        options.alpha = _LEAKY_RELU_ALPHA
    elif kind in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        options.halfPixelCenters = True
    return getattr(schema.BuiltinOptions, name), options
