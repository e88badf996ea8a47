"""Flash model: the size of the int8 ``.tflite`` file and of the TFLite Micro runtime code.

Two ways to the file size, by where the graph comes from:

* a graph imported from a file (:class:`~mcunas.graph.tflite.ImportedGraph`) is rebuilt with
  the flatbuffers builder from its contents (:mod:`mcunas.estimators.tflite_layout`): exact
  table, vtable, vector and alignment layout, within 1 % of the file down to 1 KB models;
* a search space's graph -- the file ``mcunas.export`` writes (onnx2tf 1.28 + TFLite converter
  of TF 2.21) -- gets the closed-form model below (microseconds, the search's inner loop).

:func:`model_bytes` for a space graph rebuilds the flatbuffer's size (schema
``tensorflow/lite/schema/schema.fbs``) term by term:

* constant buffers (weights int8, biases int32, shape and padding tensors), each padded to 16
  bytes (``force_align: 16`` on ``Buffer.data``);
* per tensor: the shape vector; per quantization channel a float32 scale and an int64 zero
  point; the name (onnx2tf's tensor names, predicted by :func:`onnx2tf_name_chars` from the op
  sequence);
* per operator: the input and output index vectors;
* strings (names, description, metadata names, signature keys) as flatbuffer strings: a 4-byte
  length, the characters and a NUL, padded to 4 bytes; every vector has a 4-byte length;
* the export's description, metadata entries (name + buffer) and signature definition (the
  ``ONNX2TF_*`` constants);
* fitted overheads (tables, vtables, offsets, builtin options, alignment padding): per tensor,
  per operator, per distinct operator code and per file.

Fit: ``TENSOR_OVERHEAD_BYTES``, ``OPCODE_OVERHEAD_BYTES`` and ``FIXED_OVERHEAD_BYTES`` by least
squares of file size minus the other terms on 10 exports of both spaces (13-305 KB, each
converted in a fresh process, ``isolate=True``, the pipeline's default), the four MLPerf Tiny
models and 5 small Keras models; checked on 10 further exports (10-328 KB): within 0.3 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import prod
from typing import NamedTuple

from mcunas.estimators.memory import duplicate_constant_indices
from mcunas.graph.ir import DTYPE_BYTES, Graph, Tensor
from mcunas.graph.tflite import ImportedGraph

# Buffer data alignment in the flatbuffer (schema.fbs: Buffer.data force_align 16).
BUFFER_ALIGNMENT = 16
ALIGNMENT_MASK = BUFFER_ALIGNMENT - 1
# Quantization parameters per channel: float32 scale + int64 zero point (schema.fbs).
QUANT_BYTES_PER_CHANNEL = 4 + 8
# The length prefix of every flatbuffer vector and string (uint32).
LENGTH_BYTES = 4
# Fixed-size parts (schema.fbs; bytes, the table with its 4-byte vtable offset, plus the
# 4-byte offset to it in its parent's vector): a Metadata entry (table: name offset, buffer
# index) with its Buffer table (data offset); a SignatureDef (inputs, outputs, key offsets,
# subgraph index) and its two TensorMap vectors' lengths; a TensorMap (name offset, tensor index).
METADATA_ENTRY_BYTES = (12 + 4) + (8 + 4)
SIGNATURE_BYTES = (20 + 4) + 2 * LENGTH_BYTES
TENSOR_MAP_BYTES = 12 + 4

# Overheads (bytes) of the tables, vtables, offsets and alignment padding the terms above leave
# out. Per operator (Operator table, builtin options, offset): the mean measured by attributing
# every byte of the exports and MLPerf files of the fit to its flatbuffer object (40.4-43.9
# bytes). Per tensor (Tensor, QuantizationParameters and Buffer tables, offsets, padding), per
# distinct operator code (OperatorCode table, options vtable) and fixed (Model and SubGraph
# tables, other vtables, the empty buffer 0): least squares, see the module docstring.
OPERATOR_OVERHEAD_BYTES = 41.0
TENSOR_OVERHEAD_BYTES = 57.41
OPCODE_OVERHEAD_BYTES = 13.52
FIXED_OVERHEAD_BYTES = 311.75

# What a ``mcunas.export`` file (onnx2tf + TFLiteConverter) holds beyond ops and tensors: the
# converter's description, metadata entries (name: buffer bytes) and the Keras signature (key,
# tensor-map names: ``mcunas.export`` names the ONNX input ``input`` and output ``logits``).
ONNX2TF_DESCRIPTION = "MLIR Converted."
ONNX2TF_METADATA: dict[str, int] = {"min_runtime_version": 16, "CONVERSION_METADATA": 96}
ONNX2TF_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (("serving_default", ("input", "logits")),)

def _string_bytes(chars: int) -> int:
    """A flatbuffer string: 4-byte length, the characters and a NUL, padded to 4 bytes."""
    return 4 + ((chars + 1 + 3) & -4)


def _aligned(nbytes: int) -> int:
    """``nbytes`` of buffer data rounded up to :data:`BUFFER_ALIGNMENT`."""
    return (nbytes + ALIGNMENT_MASK) & ~ALIGNMENT_MASK


# ----------------------------------------------------------------------------- onnx2tf names

# The tensor names of an onnx2tf export are TF op names of its Keras model:
# ``model_<m>/<layer>_<k>/<op>`` where ``<layer>_<k>`` counts the layers of one type in the
# process (no suffix for the first) and ``model_<m>`` the Keras models built before the final one
# (``model/`` for none). A convolution's bias is named after every op fused into it,
# ``<activation>;<add>;<convolution>;Const_<n>`` (``Const_<n>``: the converter's constants,
# numbered over the file), its output the same plus ``1``; a strided SAME convolution's also
# names the PAD folded into it (``...;Const_<n>;model/tf.compat.v1.pad_<k>/Pad;Const_<n'>``).
# Layer name and op suffix (characters):
_CONV_CHARS = len("tf.nn.convolution/convolution")
_DEPTHWISE_CHARS = len("tf.compat.v1.nn.depthwise_conv2d/depthwise")
_ADD_CHARS = len("tf.math.add/Add")
_RELU6_CHARS = len("tf.nn.relu6/Relu6")
_RELU_CHARS = len("tf.nn.relu/Relu")
_PAD_CHARS = len("tf.compat.v1.pad/Pad")
_MEAN_CHARS = len("tf.math.reduce_mean/Mean")
_MEAN_AXES_CHARS = len("/reduction_indices")
_FC_WEIGHT_CHARS = len("tf.linalg.matmul/MatMul")
_FC_BIAS_CHARS = len("logits/AddV2")  # the ONNX classifier output name
_PADDINGS_CHARS = len("arith.constant")
_INPUT_CHARS = len("serving_default_input:0")
_OUTPUT_CHARS = len("PartitionedCall:0")
_CONST_CHARS = len("Const_")
_MODEL_CHARS = len("model/")  # the final model's prefix; ``model_<m>/`` after m others
# Ops the spaces do not emit (names not modelled): a typical layer name length.
_OTHER_LAYER_CHARS = 24
# onnx2tf validates an op whose NCHW input has equal C, H and W (its layout is ambiguous) on
# throw-away Keras layers and models. Counted on real exports: per such convolution two more
# layers of its type and two add layers, two models; per such ADD one add layer, one model; per
# such PAD seven layers of the following convolution's type and seven add layers, seven models.
_AMBIGUOUS_CONV_LAYERS = 2
_AMBIGUOUS_ADD_LAYERS = 1
_AMBIGUOUS_PAD_LAYERS = 7

# The op kinds and fused activations the replay tells apart, as the small ints of a NamedOp
# (any other: 0).
NAME_KINDS: dict[str, int] = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 2, "ADD": 3, "PAD": 4, "MEAN": 5, "FULLY_CONNECTED": 6}
_CONV, _DEPTHWISE, _ADD, _PAD, _MEAN, _FULLY_CONNECTED = range(1, 7)
NAME_ACTIVATIONS: dict[str, int] = {"RELU": 1, "RELU6": 2}
_RELU, _RELU6 = 1, 2

# Characters of a Keras layer-name counter suffix: none for 0, else ``_<count>`` (a table: this
# is the inner loop of the estimate; models have far fewer than 4096 layers of one type).
COUNTER_CHARS: tuple[int, ...] = (0,) + tuple(1 + len(str(count)) for count in range(1, 4096))


class NamedOp(NamedTuple):
    """What the onnx2tf name replay reads of one op (all ints: :func:`replay_name_chars` also
    runs compiled, on rows of an integer array).

    Attributes:
        kind: the op kind's :data:`NAME_KINDS` code (0 for the others).
        unclear: 1 if its first input is ``(1, H, W, C)`` with ``H == W == C`` (see the
            constants above), else 0.
        folded_pad: 1 for a strided SAME convolution, into which the converter folds onnx2tf's
            PAD, else 0.
        activation: the fused activation's :data:`NAME_ACTIVATIONS` code (0 for none).
        second, third: tensor indices of its second input (weights, paddings, axes; -1 if none)
            and third input (bias; -1 if none or absent).
        output: tensor index of its first output (-1 if none).
    """

    kind: int
    unclear: int
    folded_pad: int
    activation: int
    second: int
    third: int
    output: int


def named_ops(graph: Graph) -> list[NamedOp]:
    """The :class:`NamedOp` of each op of ``graph``, in execution order."""
    tensors = graph.tensors
    found = []
    for op in graph.ops:
        inputs = op.inputs
        shape = tensors[inputs[0]].shape if inputs else ()
        found.append(NamedOp(
            NAME_KINDS.get(op.kind, 0),
            int(len(shape) == 4 and shape[1] == shape[2] == shape[3]),
            int(op.padding == "SAME" and op.stride != (1, 1)),
            NAME_ACTIVATIONS.get(op.activation, 0),
            inputs[1] if len(inputs) > 1 else -1,
            inputs[2] if len(inputs) > 2 and inputs[2] >= 0 else -1,
            op.outputs[0] if op.outputs else -1,
        ))
    return found


def name_counts(ops: Sequence[NamedOp]) -> tuple[int, int, int]:
    """What the names of ``ops`` depend on beyond their own: (throw-away Keras models,
    convolutions, PADs), summed over the ops."""
    models = convolutions = pads = 0
    for op in ops:
        kind = op.kind
        if kind == _CONV or kind == _DEPTHWISE:
            convolutions += 1
            models += _AMBIGUOUS_CONV_LAYERS if op.unclear else 0
        elif kind == _PAD:
            pads += 1
            models += _AMBIGUOUS_PAD_LAYERS if op.unclear else 0
        elif kind == _ADD:
            models += _AMBIGUOUS_ADD_LAYERS if op.unclear else 0
    return models, convolutions, pads


def replay_name_chars(ops, names, counts, inputs, outputs, counter_chars) -> None:  # noqa: C901 - one replay
    """Write into ``names`` the predicted name length (characters) of each tensor in the onnx2tf
    export, by replaying the Keras layer counters of the conversion op by op (see the constants
    above).

    ``ops``: the :class:`NamedOp` of every op in execution order; ``names``: one entry per
    tensor; ``counts``: :func:`name_counts` of ``ops``; ``inputs``/``outputs``: the graph's input
    and output tensors (named by the signature); ``counter_chars``: :data:`COUNTER_CHARS`.
    Tensors of ops the spaces do not emit get :data:`_OTHER_LAYER_CHARS` plus the model prefix.

    Written for two runs (so that no second copy is needed): by CPython on a list of NamedOps,
    lists and tuples (:func:`onnx2tf_name_chars`), and compiled by numba on integer arrays
    (:mod:`mcunas.estimators.fast_chain`): ints, indexing and loops only.
    """
    models, convolutions, pads = counts[0], counts[1], counts[2]
    prefix = _MODEL_CHARS if models == 0 else _MODEL_CHARS + counter_chars[models]  # "model_<m>/"
    conv_chars = prefix + _CONV_CHARS
    dw_chars = prefix + _DEPTHWISE_CHARS
    add_chars = prefix + _ADD_CHARS
    pad_chars = prefix + _PAD_CHARS
    mean_chars = prefix + _MEAN_CHARS
    relu_chars = prefix + _RELU_CHARS + 1
    relu6_chars = prefix + _RELU6_CHARS + 1
    const_chars = 2 + _CONST_CHARS  # ";Const_"
    convs = dws = relus = relu6s = 0  # layer counters of the two convolutions and two activations
    adds = pads_seen = means = skipped = 0
    constant = 2 * convolutions + pads  # Const_<n>: two per convolution, one per PAD

    def decimal_chars(number):  # len(str(number)); "_<n>" has one more character
        if number > 0:
            return counter_chars[number] - 1
        return 1 if number == 0 else counter_chars[-number]

    for index in range(len(names)):
        names[index] = prefix + _OTHER_LAYER_CHARS
    for index in range(len(ops)):
        op = ops[index]
        kind, unclear, activation, second, third, output = op[0], op[1], op[3], op[4], op[5], op[6]
        if kind == _CONV or kind == _DEPTHWISE:
            if unclear:
                skipped += _AMBIGUOUS_CONV_LAYERS
            if kind == _CONV:
                count = convs + skipped
                convs = count + 1
                weight = conv_chars + counter_chars[count]
            else:
                count = dws + skipped
                dws = count + 1
                weight = dw_chars + counter_chars[count]
            adds += skipped
            skipped = 0
            # "<add>;<weight>;Const_<n>"
            bias = add_chars + counter_chars[adds] + weight + const_chars + decimal_chars(constant)
            adds += 1
            constant -= 2
            if op[2]:
                # onnx2tf pads explicitly; the converter folds its PAD into this SAME convolution
                bias += pad_chars + counter_chars[pads_seen] + const_chars + decimal_chars(constant)
                pads_seen += 1
                constant -= 1
            if activation == _RELU6:
                bias += relu6_chars + counter_chars[relu6s]
                relu6s += 1
            elif activation == _RELU:
                bias += relu_chars + counter_chars[relus]
                relus += 1
            names[second] = weight
            if third >= 0:
                names[third] = bias
            names[output] = bias + 1
        elif kind == _ADD:
            if unclear:
                adds += _AMBIGUOUS_ADD_LAYERS
            names[output] = add_chars + counter_chars[adds]
            adds += 1
        elif kind == _PAD:
            if unclear:
                skipped += _AMBIGUOUS_PAD_LAYERS
            names[second] = _PADDINGS_CHARS
            names[output] = pad_chars + counter_chars[pads_seen]
            pads_seen += 1
            constant -= 1
        elif kind == _MEAN:
            name = mean_chars + counter_chars[means]
            names[second] = name + _MEAN_AXES_CHARS
            names[output] = name
            means += 1
        elif kind == _FULLY_CONNECTED:
            names[second] = prefix + _FC_WEIGHT_CHARS
            if third >= 0:
                names[third] = prefix + _FC_BIAS_CHARS
    for index in inputs:
        names[index] = _INPUT_CHARS
    for index in outputs:
        names[index] = _OUTPUT_CHARS


def onnx2tf_name_chars(graph: Graph) -> list[int]:
    """Predicted name length (characters) of each tensor of ``graph`` in its onnx2tf export
    (:func:`replay_name_chars` over its ops); on exports of both spaces it gives most names
    exactly, the rest within a digit or two."""
    ops = named_ops(graph)
    names = [0] * len(graph.tensors)
    replay_name_chars(ops, names, name_counts(ops), graph.inputs, graph.outputs, COUNTER_CHARS)
    return names


# ----------------------------------------------------------------------------- model size


def _extras_bytes(description: str, metadata: dict[str, int], signatures) -> int:
    """Bytes of the description, metadata entries and signature definitions of a file."""
    total = _string_bytes(len(description))
    for name, nbytes in metadata.items():
        total += METADATA_ENTRY_BYTES + _string_bytes(len(name)) + LENGTH_BYTES + _aligned(nbytes)
    for key, map_names in signatures:
        total += SIGNATURE_BYTES + _string_bytes(len(key))
        for name in map_names:
            total += TENSOR_MAP_BYTES + _string_bytes(len(name))
    return total


_ONNX2TF_EXTRAS_BYTES = _extras_bytes(ONNX2TF_DESCRIPTION, ONNX2TF_METADATA, ONNX2TF_SIGNATURES)


def tensor_terms(tensors: Iterable[Tensor]) -> tuple[int, int, int, int, int]:
    """What the file stores of ``tensors`` beyond their names, as counts that add up: (tensors,
    shape dimensions, quantized tensors, quantization channels, constant buffer bytes with
    their lengths and 16-byte alignment)."""
    count = dims = channels = quantized = data = 0
    for tensor in tensors:
        count += 1
        dims += len(tensor.shape)
        if tensor.quant_channels:
            channels += tensor.quant_channels
            quantized += 1
        if tensor.is_constant:
            nbytes = prod(tensor.shape) * DTYPE_BYTES[tensor.dtype]
            data += LENGTH_BYTES + ((nbytes + ALIGNMENT_MASK) & ~ALIGNMENT_MASK)  # _aligned, inlined
    return count, dims, quantized, channels, data


def name_bytes(name_chars) -> int:
    """Bytes of names of ``name_chars`` characters (:func:`_string_bytes`, summed; a loop, so
    that it also runs compiled, see :func:`replay_name_chars`)."""
    total = 0
    for chars in name_chars:
        total += (chars + 8) & -4
    return total


def _tensor_bytes(terms: tuple[int, int, int, int, int], names: int) -> float:
    """Bytes of tensors of :func:`tensor_terms` ``terms`` and ``names`` bytes of names:
    overhead, shape vector, quantization vectors, constant buffer (with its length), names."""
    count, dims, quantized, channels, data = terms
    return (
        (TENSOR_OVERHEAD_BYTES + LENGTH_BYTES) * count
        + 4 * dims
        + 2 * LENGTH_BYTES * quantized
        + QUANT_BYTES_PER_CHANNEL * channels
        + data
        + names
    )


def file_bytes(
    opcodes: int,
    ops: int,
    op_tensor_refs: int,
    terms: tuple[int, int, int, int, int],
    names: int,
    duplicate_terms: tuple[int, int, int, int, int],
    duplicate_names: int,
) -> int:
    """The closed-form size (bytes) of a space graph's ``.tflite`` file (module docstring) from
    its counts: distinct op kinds, ops, input and output indices of all ops, the
    :func:`tensor_terms` and :func:`name_bytes` of all tensors and of the duplicate constants
    the converter stores once (:func:`mcunas.estimators.memory.duplicate_constant_indices`)."""
    total = FIXED_OVERHEAD_BYTES + _ONNX2TF_EXTRAS_BYTES + OPCODE_OVERHEAD_BYTES * opcodes
    total += (OPERATOR_OVERHEAD_BYTES + 2 * LENGTH_BYTES) * ops
    total += 4 * op_tensor_refs
    total += _tensor_bytes(terms, names)
    if duplicate_terms[0]:  # stored once by the converter
        total -= _tensor_bytes(duplicate_terms, duplicate_names)
    return round(total)


def model_bytes(graph: Graph) -> int:
    """Predicted size (bytes) of the int8 ``.tflite`` file of ``graph``.

    A graph imported from a file (:class:`~mcunas.graph.tflite.ImportedGraph`) is rebuilt with
    the flatbuffers builder from its contents (:func:`mcunas.estimators.tflite_layout.layout_bytes`,
    within 1 % down to 1 KB files); the file size it carries is not used. Any other graph (a
    search space's, the file ``mcunas.export`` writes) gets the closed-form model of the module
    docstring: within 0.5 % of its export, and fast (the search estimates thousands per second).
    """
    if isinstance(graph, ImportedGraph):
        from mcunas.estimators.tflite_layout import layout_bytes

        return layout_bytes(graph)
    tensors = graph.tensors
    ops = graph.ops
    name_chars = onnx2tf_name_chars(graph)
    duplicates = duplicate_constant_indices(graph)
    return file_bytes(
        len({op.kind for op in ops}),
        len(ops),
        sum([len(op.inputs) + len(op.outputs) for op in ops]),
        tensor_terms(tensors),
        name_bytes(name_chars),
        tensor_terms([tensors[i] for i in duplicates]),
        name_bytes([name_chars[i] for i in duplicates]),
    )


# ----------------------------------------------------------------------------- runtime code

# TFLite Micro code in flash (bytes, Thumb-2, -Os), excluding the model.
# Provenance and uncertainty: the TFLM README states that "the core runtime just fits in 16 KB on
# an Arm Cortex M3"; we use 16 KiB for the interpreter, allocator, planner, flatbuffer parsing
# and op resolver. The per-kernel sizes are our estimates from the size of the kernels' int8
# code paths in the TFLM sources (one .cc with Init/Prepare/Eval plus the reference integer
# kernel templates it instantiates), not measurements: treat them as +-50%. The CMSIS-NN
# figures add the Arm CMSIS-NN functions each wrapper links (e.g. arm_convolve_wrapper_s8 pulls
# in the 1x1, 1xN and im2col convolution variants).
CORE_RUNTIME_BYTES = 16 * 1024
REFERENCE_KERNEL_BYTES: dict[str, int] = {
    "CONV_2D": 6000,
    "DEPTHWISE_CONV_2D": 6000,
    "FULLY_CONNECTED": 4000,
    "ADD": 3000,
    "MUL": 3000,
    "AVERAGE_POOL_2D": 3000,
    "MAX_POOL_2D": 3000,
    "MEAN": 5000,
    "SOFTMAX": 3000,
    "RESHAPE": 600,
    "PAD": 2000,
    "CONCATENATION": 2500,
    "QUANTIZE": 2000,
    "DEQUANTIZE": 2000,
    "RELU": 1500,
    "RELU6": 1500,
    "LOGISTIC": 2000,
    "HARD_SWISH": 2000,
}
# Extra code of the CMSIS-NN implementation over the reference one (the wrappers keep the
# reference paths for non-int8 types).
CMSIS_NN_EXTRA_BYTES: dict[str, int] = {
    "CONV_2D": 8000,
    "DEPTHWISE_CONV_2D": 6000,
    "FULLY_CONNECTED": 2500,
    "ADD": 1500,
    "MUL": 1500,
    "AVERAGE_POOL_2D": 1500,
    "MAX_POOL_2D": 1000,
    "SOFTMAX": 1500,
}
# Code size relative to Thumb-2: ARMv6-M (Cortex-M0+) has only 16-bit Thumb and no DSP
# instructions (longer sequences); Xtensa LX7 code density is comparable to Thumb-2 with its
# 16/24-bit encodings. Rough factors, +-20%.
CORE_CODE_FACTOR: dict[str, float] = {
    "cortex-m0plus": 1.2,
    "cortex-m4": 1.0,
    "cortex-m7": 1.0,
    "cortex-m33": 1.0,
    "xtensa-lx7": 1.1,
}
# Fallback for op kinds not in the tables (bytes).
DEFAULT_KERNEL_BYTES = 3000


def runtime_code_bytes(
    op_kinds: list[str] | tuple[str, ...], kernels: str = "cmsis-nn", core: str = "cortex-m4"
) -> int:
    """Estimated TFLM runtime code (bytes) linked for a model using ``op_kinds``.

    Args:
        op_kinds: distinct op kinds registered in the ``MicroMutableOpResolver``.
        kernels: ``"cmsis-nn"`` or ``"reference"``.
        core: core family (:data:`CORE_CODE_FACTOR`); unknown cores count as Thumb-2.

    See the constants above for provenance; this is an estimate (+-50%), not a measurement.
    """
    total = CORE_RUNTIME_BYTES
    for kind in set(op_kinds):
        total += REFERENCE_KERNEL_BYTES.get(kind, DEFAULT_KERNEL_BYTES)
        if kernels == "cmsis-nn":
            total += CMSIS_NN_EXTRA_BYTES.get(kind, 0)
    return round(total * CORE_CODE_FACTOR.get(core, 1.0))
