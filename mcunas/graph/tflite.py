"""Read an int8 ``.tflite`` flatbuffer into the op-graph IR (:class:`mcunas.graph.ir.Graph`).

The file is parsed with the low-level table API of the ``flatbuffers`` package against the
field layout of the TFLite schema (``tensorflow/lite/schema/schema.fbs``): no TensorFlow import,
a few milliseconds for a MobileNet. Accepted: one subgraph of the ops in :data:`SUPPORTED_OPS`
with int8 activations (int16 where the kernel has an int16 path, :data:`INT16_OPS`), float32
only at the edges (the input of a QUANTIZE, the output of a DEQUANTIZE: the converter's
default float I/O around an int8 body). Everything else is a :class:`ModelFormatError` of one
line that names the op (by its schema name) or the tensor and its index.

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
from mcunas.graph.ir import DTYPE_BYTES, Graph, Op
from mcunas.graph.tflite_schema import TENSOR_TYPE_NAMES, operator_name

# Op kinds mcunas models (graph, arena, size, latency): the ops of TFLite Micro's kernels that
# int8 vision, audio and anomaly models use. Any other op is rejected with ModelFormatError
# naming it: its arena and latency cost are unknown.
SUPPORTED_OPS: frozenset[str] = frozenset(
    {
        "ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED",
        "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SUM", "REDUCE_MAX", "SOFTMAX", "LOG_SOFTMAX",
        "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "PRELU", "RELU", "RELU6",
        "QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "PAD",
        "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "CONCATENATION", "STRIDED_SLICE", "SLICE",
        "SPLIT", "SPLIT_V", "PACK", "UNPACK", "GATHER", "ARG_MAX",
    }
)
# Kinds whose TFLite Micro kernels also take int16 activations (16x8 quantization: int16
# activations, int8 weights); the others run int8 only. From the kernels' Prepare/Eval type
# switches (tensorflow/lite/micro/kernels/*.cc); GATHER, HARD_SWISH, PRELU, LOG_SOFTMAX and
# ARG_MAX have no int16 path (the converter does not emit 16x8 for the last four either).
INT16_OPS: frozenset[str] = SUPPORTED_OPS - {"GATHER", "HARD_SWISH", "PRELU", "LOG_SOFTMAX", "ARG_MAX"}
# Activation (non-constant) tensor types each kind may have besides int8/int16: float32 at the
# float edge of a model (input of QUANTIZE, output of DEQUANTIZE), integer indices of ARG_MAX.
_EXTRA_INPUT_TYPES = {"QUANTIZE": frozenset({"float32"})}
_EXTRA_OUTPUT_TYPES = {"DEQUANTIZE": frozenset({"float32"}), "ARG_MAX": frozenset({"int32", "int64"})}
_MAC_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")

_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}

# Field slots (vtable offset = 4 + 2 * field id) of the schema tables read here.
_MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_DESCRIPTION, _MODEL_BUFFERS = 6, 8, 10, 12
_MODEL_METADATA, _MODEL_SIGNATURES = 16, 18
_METADATA_NAME, _METADATA_BUFFER = 4, 6
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_KEY = 4, 6, 8
_TENSOR_MAP_NAME = 4
_OPCODE_DEPRECATED, _OPCODE_CUSTOM, _OPCODE_BUILTIN = 4, 6, 10
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS, _SUBGRAPH_NAME = 4, 6, 8, 10, 12
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_BUFFER, _TENSOR_NAME, _TENSOR_QUANT = 4, 6, 8, 10, 12
_TENSOR_SHAPE_SIGNATURE = 18
_QUANT_MIN, _QUANT_SCALE = 4, 8
_OPERATOR_OPCODE, _OPERATOR_INPUTS, _OPERATOR_OUTPUTS, _OPERATOR_OPTIONS = 4, 6, 8, 12
_BUFFER_DATA, _BUFFER_SIZE = 4, 8

# Option tables: (padding, stride_w, stride_h) slots shared by Conv2D, DepthwiseConv2D, Pool2D
# and TransposeConv; then per table its activation (and dilation) slots.
_OPT_PADDING, _OPT_STRIDE_W, _OPT_STRIDE_H = 4, 6, 8
_CONV_ACTIVATION, _CONV_DILATION_W, _CONV_DILATION_H = 10, 12, 14
_DW_ACTIVATION, _DW_DILATION_W, _DW_DILATION_H = 12, 14, 16
_POOL_FILTER_W, _POOL_FILTER_H, _POOL_ACTIVATION = 10, 12, 14
_TRANSPOSE_CONV_ACTIVATION = 10
# FullyConnected, Add, Sub, Mul: the fused activation is field 0; Concatenation: field 1.
_FIRST_FIELD_ACTIVATION = ("FULLY_CONNECTED", "ADD", "SUB", "MUL")
_FIELD0, _FIELD1 = 4, 6


@dataclass(slots=True)
class ImportedGraph(Graph):
    """A :class:`Graph` read from a ``.tflite`` file, with facts of the file.

    Attributes:
        file_bytes: size of the ``.tflite`` file in bytes.
        buffer_bytes: per tensor (same order as ``tensors``), the bytes of its flatbuffer
            buffer (0 for activations).
        shared_buffer: per tensor, whether an earlier tensor refers to the same buffer (the
            converter stores equal constants once, e.g. the all-zero biases of untrained models).
        sentinel_buffer: per tensor, whether it refers to buffer 0, the schema's empty sentinel,
            instead of a buffer of its own (the converter gives each activation its own empty
            buffer; a file stripped by :mod:`mcunas.export.strip` points them all at buffer 0).
        minmax_channels: per tensor, the length of its quantization ``min`` (and ``max``)
            arrays: float calibration ranges older converters keep (0 when absent).
        shape_signatures: per tensor, whether it has a ``shape_signature`` vector (the shape
            with -1 for dynamic dimensions; older converters write it on inputs/activations).
        description: the model's description string (e.g. ``"MLIR Converted."``); the subgraph's
            name in ``subgraph_name`` (``"main"``); both ``""`` where the file has none, as
            tensor names are.
        metadata: per ``Model.metadata`` entry, its name and the bytes of its buffer.
        signatures: per signature definition, its key and the names of its input and output
            tensor maps.
    """

    file_bytes: int = 0
    buffer_bytes: list[int] = field(default_factory=list)
    shared_buffer: list[bool] = field(default_factory=list)
    sentinel_buffer: list[bool] = field(default_factory=list)
    minmax_channels: list[int] = field(default_factory=list)
    shape_signatures: list[bool] = field(default_factory=list)
    description: str = ""
    subgraph_name: str = ""
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
    """Kernel/stride/padding/activation/dilation of one operator from its builtin options table."""
    options = reader.sub_table(table, _OPERATOR_OPTIONS)
    result: dict = {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        weight_shape = shapes[1]  # (C_out, KH, KW, C_in), depthwise (1, KH, KW, C_out)
        result["kernel"] = (weight_shape[1], weight_shape[2])
    if options is None:
        return result
    get = reader.scalar
    u8, i32 = reader.types.Uint8Flags, reader.types.Int32Flags

    def activation(slot: int) -> str:
        return _ACTIVATION.get(get(options, slot, u8, 0), "NONE")

    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "TRANSPOSE_CONV"):
        result["padding"] = _PADDING.get(get(options, _OPT_PADDING, u8, 0), "SAME")
        result["stride"] = (get(options, _OPT_STRIDE_H, i32, 0), get(options, _OPT_STRIDE_W, i32, 0))
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        conv = kind == "CONV_2D"
        result["activation"] = activation(_CONV_ACTIVATION if conv else _DW_ACTIVATION)
        dilation = (
            get(options, _CONV_DILATION_H if conv else _DW_DILATION_H, i32, 1),
            get(options, _CONV_DILATION_W if conv else _DW_DILATION_W, i32, 1),
        )
        if dilation != (1, 1):
            result["dilation"] = dilation
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        result["kernel"] = (get(options, _POOL_FILTER_H, i32, 0), get(options, _POOL_FILTER_W, i32, 0))
        result["activation"] = activation(_POOL_ACTIVATION)
    elif kind == "TRANSPOSE_CONV":
        result["activation"] = activation(_TRANSPOSE_CONV_ACTIVATION)
    elif kind in _FIRST_FIELD_ACTIVATION:
        result["activation"] = activation(_FIELD0)
    elif kind == "CONCATENATION":
        result["activation"] = activation(_FIELD1)
    return result


def op_macs(kind: str, input_shapes: list[tuple[int, ...]], output_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one op (batch 1), the convention shared with the search spaces.

    CONV_2D: Hout*Wout*Cout*KH*KW*Cin; DEPTHWISE_CONV_2D: Hout*Wout*C*KH*KW;
    FULLY_CONNECTED: N_in*N_out (times rows when the input has several); TRANSPOSE_CONV (inputs:
    output shape, weights, input): Hin*Win*Cin*KH*KW*Cout, every input pixel scattered over the
    kernel window; other ops 0 (element-wise arithmetic is not counted as MACs).
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
    if kind == "TRANSPOSE_CONV":
        c_out, kh, kw, c_in = input_shapes[1]
        _, h_in, w_in, _ = input_shapes[2]
        return h_in * w_in * c_in * kh * kw * c_out
    return 0


def read_tflite(path: str | os.PathLike[str]) -> ImportedGraph:
    """Parse an int8 ``.tflite`` file (one subgraph) into an :class:`ImportedGraph`.

    Raises:
        ModelFormatError: missing file, not a TFLite flatbuffer, several subgraphs, a tensor
            type or op mcunas does not model, or a non-int8 body (the message names the op or
            tensor and its index).
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


def _opcode_names(reader: _Reader, root) -> list[str]:
    """Per operator code of the model, its name: the BuiltinOperator name, or for a custom op
    ``custom op '<custom_code>'``."""
    types = reader.types
    names = []
    for code_table in reader.tables(root, _MODEL_OPCODES):
        deprecated = reader.scalar(code_table, _OPCODE_DEPRECATED, types.Int8Flags, 0)
        builtin = reader.scalar(code_table, _OPCODE_BUILTIN, types.Int32Flags, 0)
        name = operator_name(max(deprecated, builtin))  # codes >= 127 live only in builtin_code
        if name == "CUSTOM":
            name = f"custom op '{reader.string(code_table, _OPCODE_CUSTOM)}'"
        names.append(name)
    return names


def _check_subgraphs(path: Path, reader: _Reader, subgraphs: list, opcode_names: list[str]) -> None:
    """One-line ModelFormatError for a model without, or with several, subgraphs (naming the ops
    of subgraph 0 that call the others: WHILE, IF, CALL_ONCE, ...)."""
    if not subgraphs:
        raise ModelFormatError(f"{path}: the model has no subgraph")
    if len(subgraphs) > 1:
        flags = reader.types.Uint32Flags
        kinds = [opcode_names[reader.scalar(op, _OPERATOR_OPCODE, flags, 0)]
                 for op in reader.tables(subgraphs[0], _SUBGRAPH_OPERATORS)]
        callers = [f"operator {index} {kind}" for index, kind in enumerate(kinds) if kind not in SUPPORTED_OPS]
        via = f" (called from subgraph 0 by {', '.join(callers)})" if callers else ""
        raise ModelFormatError(
            f"{path}: the model has {len(subgraphs)} subgraphs{via}; mcunas estimates "
            "single-subgraph models (no control flow or call ops)"
        )


def _check_types(path: Path, graph: Graph, op_index: int, kind: str, op: Op) -> None:
    """One-line ModelFormatError unless ``op`` reads and writes the activation types TFLM's
    kernel for ``kind`` runs (see :data:`INT16_OPS` and the float I/O rule)."""
    tensors = graph.tensors
    allowed = {"int8", "int16"} if kind in INT16_OPS else {"int8"}
    for role, indices, extra in (
        ("reads", op.inputs, _EXTRA_INPUT_TYPES.get(kind, frozenset())),
        ("writes", op.outputs, _EXTRA_OUTPUT_TYPES.get(kind, frozenset())),
    ):
        for index in indices:
            if index < 0 or tensors[index].is_constant:
                continue
            dtype = tensors[index].dtype
            if dtype in allowed or dtype in extra:
                continue
            where = f"operator {op_index} {kind} {role} {dtype} tensor {index} '{tensors[index].name}'"
            if dtype == "float32":
                raise ModelFormatError(
                    f"{path}: float32 model body: {where} (mcunas estimates int8 models, float32 only "
                    "into a first QUANTIZE or out of a last DEQUANTIZE; convert with full-integer quantization)"
                )
            raise ModelFormatError(
                f"{path}: {where}: TFLite Micro's {kind} kernel runs "
                f"{' or '.join(sorted(allowed))} activations; mcunas models only those"
            )
    if kind in _MAC_KINDS and tensors[op.inputs[1]].dtype == "float32":
        raise ModelFormatError(
            f"{path}: float32 model body: operator {op_index} {kind} has float32 weights (tensor "
            f"{op.inputs[1]} '{tensors[op.inputs[1]].name}'); convert with full-integer quantization"
        )


def _parse(path: Path, data: bytes) -> ImportedGraph:
    reader = _Reader(data)
    root = reader.table(int.from_bytes(data[0:4], "little"))
    types = reader.types
    u8, u32, u64 = types.Uint8Flags, types.Uint32Flags, types.Uint64Flags

    opcode_names = _opcode_names(reader, root)
    buffer_sizes = []
    for buffer in reader.tables(root, _MODEL_BUFFERS):
        length = reader.vector_length(buffer, _BUFFER_DATA)
        buffer_sizes.append(length or reader.scalar(buffer, _BUFFER_SIZE, u64, 0))

    subgraphs = reader.tables(root, _MODEL_SUBGRAPHS)
    _check_subgraphs(path, reader, subgraphs, opcode_names)
    subgraph = subgraphs[0]

    graph = ImportedGraph(name=path.stem, file_bytes=len(data), description=reader.string(root, _MODEL_DESCRIPTION),
                          subgraph_name=reader.string(subgraph, _SUBGRAPH_NAME))
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
        dtype = TENSOR_TYPE_NAMES.get(type_code, f"TensorType {type_code}")
        if dtype not in DTYPE_BYTES:
            raise ModelFormatError(
                f"{path}: tensor {index} '{reader.string(tensor, _TENSOR_NAME)}' has type {dtype}, "
                f"which mcunas does not model (types: {', '.join(DTYPE_BYTES)})"
            )
        buffer_index = reader.scalar(tensor, _TENSOR_BUFFER, u32, 0)
        nbytes = buffer_sizes[buffer_index] if buffer_index < len(buffer_sizes) else 0
        graph.shared_buffer.append(nbytes > 0 and buffer_index in used_buffers)
        graph.sentinel_buffer.append(buffer_index == 0)
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

    for op_index, op_table in enumerate(reader.tables(subgraph, _SUBGRAPH_OPERATORS)):
        kind = opcode_names[reader.scalar(op_table, _OPERATOR_OPCODE, u32, 0)]
        if kind not in SUPPORTED_OPS:
            raise ModelFormatError(
                f"{path}: operator {op_index} is {kind}, an op mcunas does not model "
                f"(supported: {', '.join(sorted(SUPPORTED_OPS))})"
            )
        inputs = reader.int_vector(op_table, _OPERATOR_INPUTS)
        outputs = reader.int_vector(op_table, _OPERATOR_OUTPUTS)
        shapes = [graph.tensors[i].shape if i >= 0 else () for i in inputs]
        op = Op(
            kind=kind,
            inputs=inputs,
            outputs=outputs,
            macs=op_macs(kind, shapes, graph.tensors[outputs[0]].shape),
            **_op_options(reader, kind, op_table, shapes),
        )
        _check_types(path, graph, op_index, kind, op)
        graph.ops.append(op)
    return graph
