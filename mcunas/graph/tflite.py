"""Read an int8 ``.tflite`` flatbuffer into the op-graph IR (:class:`mcunas.graph.ir.Graph`).

The file is parsed with the low-level table API of the ``flatbuffers`` package against the
field layout of the TFLite schema (``tensorflow/lite/schema/schema.fbs``): no TensorFlow import,
a few milliseconds for a MobileNet. Only subgraph 0 is read (TFLite Micro models of the kinds
mcunas estimates have one subgraph).

The result is an :class:`ImportedGraph`, a :class:`Graph` that also carries facts of the file
that the flash model (:func:`mcunas.estimators.flash.model_bytes`) counts beyond ops and tensors:
quantization min/max arrays, shape signatures, the description, metadata entries and signature
definitions (converters differ in these), plus the file size and each tensor's buffer size for
checking the estimate against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mcunas.errors import ModelFormatError
from mcunas.graph.ir import Graph, Op

# BuiltinOperator codes (schema.fbs) of the ops mcunas models (memory, flash and latency).
# Any other op is rejected with ModelFormatError: its arena and latency cost are unknown.
SUPPORTED_OPS: dict[int, str] = {
    0: "ADD",
    1: "AVERAGE_POOL_2D",
    2: "CONCATENATION",
    3: "CONV_2D",
    4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE",
    9: "FULLY_CONNECTED",
    14: "LOGISTIC",
    17: "MAX_POOL_2D",
    18: "MUL",
    19: "RELU",
    21: "RELU6",
    22: "RESHAPE",
    25: "SOFTMAX",
    34: "PAD",
    40: "MEAN",
    114: "QUANTIZE",
    117: "HARD_SWISH",
}

# TensorType enum (schema.fbs) -> IR dtype name.
_TENSOR_TYPES: dict[int, str] = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}

# Field slots (vtable offset = 4 + 2 * field id) of the schema tables read here.
_MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_DESCRIPTION, _MODEL_BUFFERS = 6, 8, 10, 12
_MODEL_METADATA, _MODEL_SIGNATURES = 16, 18
_METADATA_NAME, _METADATA_BUFFER = 4, 6
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_KEY = 4, 6, 8
_TENSOR_MAP_NAME = 4
_OPCODE_DEPRECATED, _OPCODE_BUILTIN = 4, 10
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS = 4, 6, 8, 10
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_BUFFER, _TENSOR_NAME, _TENSOR_QUANT = 4, 6, 8, 10, 12
_TENSOR_SHAPE_SIGNATURE = 18
_QUANT_MIN, _QUANT_SCALE = 4, 8
_OPERATOR_OPCODE, _OPERATOR_INPUTS, _OPERATOR_OUTPUTS, _OPERATOR_OPTIONS = 4, 6, 8, 12
_BUFFER_DATA, _BUFFER_SIZE = 4, 8

# Option tables: (padding, stride_w, stride_h) slots shared by Conv2D, DepthwiseConv2D, Pool2D.
_OPT_PADDING, _OPT_STRIDE_W, _OPT_STRIDE_H = 4, 6, 8
_CONV_ACTIVATION, _DW_ACTIVATION = 10, 12
_POOL_FILTER_W, _POOL_FILTER_H, _POOL_ACTIVATION = 10, 12, 14
_FC_ACTIVATION, _ADD_ACTIVATION = 4, 4


@dataclass(slots=True)
class ImportedGraph(Graph):
    """A :class:`Graph` read from a ``.tflite`` file, with facts of the file.

    Attributes:
        file_bytes: size of the ``.tflite`` file in bytes.
        buffer_bytes: per tensor (same order as ``tensors``), the bytes of its flatbuffer
            buffer (0 for activations).
        shared_buffer: per tensor, whether an earlier tensor refers to the same buffer (the
            converter stores equal constants once, e.g. the all-zero biases of untrained models).
        minmax_channels: per tensor, the length of its quantization ``min`` (and ``max``)
            arrays: float calibration ranges older converters keep (0 when absent).
        shape_signatures: per tensor, whether it has a ``shape_signature`` vector (the shape
            with -1 for dynamic dimensions; older converters write it on inputs/activations).
        description: the model's description string (e.g. ``"MLIR Converted."``).
        metadata: per ``Model.metadata`` entry, its name and the bytes of its buffer.
        signatures: per signature definition, its key and the names of its input and output
            tensor maps.
    """

    file_bytes: int = 0
    buffer_bytes: list[int] = field(default_factory=list)
    shared_buffer: list[bool] = field(default_factory=list)
    minmax_channels: list[int] = field(default_factory=list)
    shape_signatures: list[bool] = field(default_factory=list)
    description: str = ""
    metadata: dict[str, int] = field(default_factory=dict)
    signatures: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


class _Reader:
    """Thin accessors over flatbuffers tables (offsets relative to one byte buffer).

    The ``flatbuffers`` package is imported here, not with this module, so that importing the
    IR types stays cheap.
    """

    def __init__(self, data: bytes) -> None:
        from flatbuffers import number_types
        from flatbuffers.table import Table

        self.data = data
        self.types = number_types
        self._table_type = Table

    def table(self, position: int):
        return self._table_type(self.data, position)

    @staticmethod
    def scalar(table, slot: int, flags: type, default: int) -> int:
        offset = table.Offset(slot)
        return table.Get(flags, offset + table.Pos) if offset else default

    def vector_length(self, table, slot: int) -> int:
        offset = table.Offset(slot)
        return table.VectorLen(offset) if offset else 0

    def int_vector(self, table, slot: int) -> tuple[int, ...]:
        offset = table.Offset(slot)
        if not offset:
            return ()
        start = table.Vector(offset)
        flags = self.types.Int32Flags
        return tuple(table.Get(flags, start + 4 * i) for i in range(table.VectorLen(offset)))

    def tables(self, table, slot: int) -> list:
        offset = table.Offset(slot)
        if not offset:
            return []
        start = table.Vector(offset)
        return [self.table(table.Indirect(start + 4 * i)) for i in range(table.VectorLen(offset))]

    def sub_table(self, table, slot: int):
        offset = table.Offset(slot)
        return self.table(table.Indirect(offset + table.Pos)) if offset else None

    def string(self, table, slot: int) -> str:
        offset = table.Offset(slot)
        return table.String(offset + table.Pos).decode("utf-8", "replace") if offset else ""


def _op_options(reader: _Reader, kind: str, table, shapes: list[tuple[int, ...]]) -> dict:
    """Kernel/stride/padding/activation of one operator from its builtin options table."""
    options = reader.sub_table(table, _OPERATOR_OPTIONS)
    if options is None:
        return {}
    get = reader.scalar
    u8, i32 = reader.types.Uint8Flags, reader.types.Int32Flags
    result: dict = {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
        result["padding"] = _PADDING.get(get(options, _OPT_PADDING, u8, 0), "SAME")
        result["stride"] = (get(options, _OPT_STRIDE_H, i32, 0), get(options, _OPT_STRIDE_W, i32, 0))
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        weight_shape = shapes[1]
        result["kernel"] = (weight_shape[1], weight_shape[2])
        slot = _CONV_ACTIVATION if kind == "CONV_2D" else _DW_ACTIVATION
        result["activation"] = _ACTIVATION.get(get(options, slot, u8, 0), "NONE")
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        result["kernel"] = (get(options, _POOL_FILTER_H, i32, 0), get(options, _POOL_FILTER_W, i32, 0))
        result["activation"] = _ACTIVATION.get(get(options, _POOL_ACTIVATION, u8, 0), "NONE")
    elif kind == "FULLY_CONNECTED":
        result["activation"] = _ACTIVATION.get(get(options, _FC_ACTIVATION, u8, 0), "NONE")
    elif kind in ("ADD", "MUL"):
        result["activation"] = _ACTIVATION.get(get(options, _ADD_ACTIVATION, u8, 0), "NONE")
    return result


def op_macs(kind: str, input_shapes: list[tuple[int, ...]], output_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one op (batch 1), the convention shared with the search spaces.

    CONV_2D: Hout*Wout*Cout*KH*KW*Cin; DEPTHWISE_CONV_2D: Hout*Wout*C*KH*KW;
    FULLY_CONNECTED: N_in*N_out (times rows when the input has several); other ops 0.
    """
    if kind == "CONV_2D":
        _, h_out, w_out, c_out = output_shape
        _, kh, kw, c_in = input_shapes[1]
        return h_out * w_out * c_out * kh * kw * c_in
    if kind == "DEPTHWISE_CONV_2D":
        _, h_out, w_out, channels = output_shape
        _, kh, kw, _ = input_shapes[1]
        return h_out * w_out * channels * kh * kw
    if kind == "FULLY_CONNECTED":
        n_out, n_in = input_shapes[1]
        rows = 1
        for dim in output_shape[:-1]:
            rows *= dim
        return rows * n_in * n_out
    return 0


def read_tflite(path: str | os.PathLike[str]) -> ImportedGraph:
    """Parse subgraph 0 of an int8 ``.tflite`` file into an :class:`ImportedGraph`.

    Raises:
        ModelFormatError: missing file, not a TFLite flatbuffer, a float model, or an op
            mcunas does not model (the message names the op and its index).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such .tflite file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFormatError(f"{path}: not a TFLite flatbuffer (file identifier 'TFL3' missing)")
    try:
        return _parse(path, data)
    except ModelFormatError:
        raise
    except Exception as exc:  # a truncated or corrupt flatbuffer: struct/index errors
        raise ModelFormatError(f"{path}: corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from exc


def _parse(path: Path, data: bytes) -> ImportedGraph:
    reader = _Reader(data)
    root = reader.table(int.from_bytes(data[0:4], "little"))
    types = reader.types
    u8, i32, u32, u64 = types.Uint8Flags, types.Int32Flags, types.Uint32Flags, types.Uint64Flags

    opcodes = []
    for code_table in reader.tables(root, _MODEL_OPCODES):
        deprecated = reader.scalar(code_table, _OPCODE_DEPRECATED, types.Int8Flags, 0)
        builtin = reader.scalar(code_table, _OPCODE_BUILTIN, i32, 0)
        opcodes.append(max(deprecated, builtin))  # codes >= 127 live only in builtin_code

    buffer_sizes = []
    for buffer in reader.tables(root, _MODEL_BUFFERS):
        length = reader.vector_length(buffer, _BUFFER_DATA)
        buffer_sizes.append(length or reader.scalar(buffer, _BUFFER_SIZE, u64, 0))

    subgraphs = reader.tables(root, _MODEL_SUBGRAPHS)
    if not subgraphs:
        raise ModelFormatError(f"{path}: the model has no subgraph")
    subgraph = subgraphs[0]

    graph = ImportedGraph(name=path.stem, file_bytes=len(data), description=reader.string(root, _MODEL_DESCRIPTION))
    for entry in reader.tables(root, _MODEL_METADATA):
        buffer_index = reader.scalar(entry, _METADATA_BUFFER, u32, 0)
        size = buffer_sizes[buffer_index] if buffer_index < len(buffer_sizes) else 0
        graph.metadata[reader.string(entry, _METADATA_NAME)] = size
    for signature in reader.tables(root, _MODEL_SIGNATURES):
        maps = reader.tables(signature, _SIGNATURE_INPUTS) + reader.tables(signature, _SIGNATURE_OUTPUTS)
        names = tuple(reader.string(tensor_map, _TENSOR_MAP_NAME) for tensor_map in maps)
        graph.signatures.append((reader.string(signature, _SIGNATURE_KEY), names))
    used_buffers: set[int] = set()
    for index, tensor in enumerate(reader.tables(subgraph, _SUBGRAPH_TENSORS)):
        type_code = reader.scalar(tensor, _TENSOR_TYPE, u8, 0)
        dtype = _TENSOR_TYPES.get(type_code)
        if dtype is None:
            raise ModelFormatError(f"{path}: tensor {index} has unsupported TensorType code {type_code}")
        buffer_index = reader.scalar(tensor, _TENSOR_BUFFER, u32, 0)
        nbytes = buffer_sizes[buffer_index] if buffer_index < len(buffer_sizes) else 0
        graph.shared_buffer.append(nbytes > 0 and buffer_index in used_buffers)
        used_buffers.add(buffer_index)
        quant = reader.sub_table(tensor, _TENSOR_QUANT)
        channels = reader.vector_length(quant, _QUANT_SCALE) if quant is not None else 0
        graph.minmax_channels.append(reader.vector_length(quant, _QUANT_MIN) if quant is not None else 0)
        graph.shape_signatures.append(reader.vector_length(tensor, _TENSOR_SHAPE_SIGNATURE) > 0)
        graph.add_tensor(
            reader.string(tensor, _TENSOR_NAME),
            reader.int_vector(tensor, _TENSOR_SHAPE),
            dtype,
            is_constant=nbytes > 0,
            quant_channels=channels,
        )
        graph.buffer_bytes.append(nbytes)
    graph.inputs = reader.int_vector(subgraph, _SUBGRAPH_INPUTS)
    graph.outputs = reader.int_vector(subgraph, _SUBGRAPH_OUTPUTS)

    for index in graph.inputs:
        if graph.tensors[index].dtype == "float32":
            raise ModelFormatError(
                f"{path}: float32 model (input tensor '{graph.tensors[index].name}'): mcunas "
                "estimates int8 models; convert with full-integer quantization"
            )

    for op_index, op_table in enumerate(reader.tables(subgraph, _SUBGRAPH_OPERATORS)):
        opcode_index = reader.scalar(op_table, _OPERATOR_OPCODE, u32, 0)
        code = opcodes[opcode_index]
        kind = SUPPORTED_OPS.get(code)
        if kind is None:
            raise ModelFormatError(
                f"{path}: operator {op_index} has builtin code {code}, an op mcunas does not "
                f"model (supported: {', '.join(sorted(SUPPORTED_OPS.values()))})"
            )
        inputs = reader.int_vector(op_table, _OPERATOR_INPUTS)
        outputs = reader.int_vector(op_table, _OPERATOR_OUTPUTS)
        shapes = [graph.tensors[i].shape if i >= 0 else () for i in inputs]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and (
            graph.tensors[inputs[1]].dtype == "float32"
        ):
            raise ModelFormatError(
                f"{path}: float32 model (operator {op_index} {kind} has float32 weights): "
                "mcunas estimates int8 models; convert with full-integer quantization"
            )
        graph.ops.append(
            Op(
                kind=kind,
                inputs=inputs,
                outputs=outputs,
                macs=op_macs(kind, shapes, graph.tensors[outputs[0]].shape),
                **_op_options(reader, kind, op_table, shapes),
            )
        )
    return graph
