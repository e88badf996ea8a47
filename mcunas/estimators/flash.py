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

from math import prod

from mcunas.estimators.memory import duplicate_constant_indices
from mcunas.graph.ir import DTYPE_BYTES, Graph
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
_LAYER_CHARS: dict[str, int] = {
    "conv": len("tf.nn.convolution/convolution"),
    "dw": len("tf.compat.v1.nn.depthwise_conv2d/depthwise"),
    "add": len("tf.math.add/Add"),
    "RELU6": len("tf.nn.relu6/Relu6"),
    "RELU": len("tf.nn.relu/Relu"),
    "pad": len("tf.compat.v1.pad/Pad"),
    "mean": len("tf.math.reduce_mean/Mean"),
}
_MEAN_AXES_CHARS = len("/reduction_indices")
_FC_WEIGHT_CHARS = len("tf.linalg.matmul/MatMul")
_FC_BIAS_CHARS = len("logits/AddV2")  # the ONNX classifier output name
_PADDINGS_CHARS = len("arith.constant")
_INPUT_CHARS = len("serving_default_input:0")
_OUTPUT_CHARS = len("PartitionedCall:0")
_CONST_CHARS = len("Const_")
# Ops the spaces do not emit (names not modelled): a typical layer name length.
_OTHER_LAYER_CHARS = 24
# onnx2tf validates an op whose NCHW input has equal C, H and W (its layout is ambiguous) on
# throw-away Keras layers and models. Counted on real exports: per such convolution two more
# layers of its type and two add layers, two models; per such ADD one add layer, one model; per
# such PAD seven layers of the following convolution's type and seven add layers, seven models.
_AMBIGUOUS_CONV_LAYERS = 2
_AMBIGUOUS_ADD_LAYERS = 1
_AMBIGUOUS_PAD_LAYERS = 7


# Characters of a Keras layer-name counter suffix: none for 0, else ``_<count>`` (a table: this
# is the inner loop of the estimate; models have far fewer than 4096 layers of one type).
_COUNTER_CHARS: tuple[int, ...] = (0,) + tuple(1 + len(str(count)) for count in range(1, 4096))


def onnx2tf_name_chars(graph: Graph) -> list[int]:
    """Predicted name length (characters) of each tensor of ``graph`` in its onnx2tf export.

    Replays the Keras layer counters of the conversion op by op (see the constants above); on
    exports of both spaces it gives most names exactly, the rest within a digit or two. Tensors
    of ops the spaces do not emit get :data:`_OTHER_LAYER_CHARS` plus the model prefix.
    """
    tensors = graph.tensors
    ops = graph.ops
    ambiguous = []
    models = convolutions = pads = 0
    for op in ops:
        kind = op.kind
        shape = tensors[op.inputs[0]].shape if op.inputs else ()
        unclear = len(shape) == 4 and shape[1] == shape[2] == shape[3]  # see the constants above
        ambiguous.append(unclear)
        if kind == "CONV_2D" or kind == "DEPTHWISE_CONV_2D":
            convolutions += 1
            models += _AMBIGUOUS_CONV_LAYERS if unclear else 0
        elif kind == "PAD":
            pads += 1
            models += _AMBIGUOUS_PAD_LAYERS if unclear else 0
        elif kind == "ADD":
            models += _AMBIGUOUS_ADD_LAYERS if unclear else 0
    prefix = len("model/") if models == 0 else len("model_/") + len(str(models))
    conv_chars = prefix + _LAYER_CHARS["conv"]
    dw_chars = prefix + _LAYER_CHARS["dw"]
    add_chars = prefix + _LAYER_CHARS["add"]
    pad_chars = prefix + _LAYER_CHARS["pad"]
    activation_chars = {name: prefix + _LAYER_CHARS[name] + 1 for name in ("RELU", "RELU6")}
    counters = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 0, "RELU": 0, "RELU6": 0}
    adds = pads_seen = means = skipped = 0
    constant = 2 * convolutions + pads  # Const_<n>: two per convolution, one per PAD
    names = [prefix + _OTHER_LAYER_CHARS] * len(tensors)
    suffix = _COUNTER_CHARS  # a local: the lookups below are the estimate's inner loop
    for op, unclear in zip(ops, ambiguous):
        kind = op.kind
        inputs = op.inputs
        if kind == "CONV_2D" or kind == "DEPTHWISE_CONV_2D":
            if unclear:
                skipped += _AMBIGUOUS_CONV_LAYERS
            count = counters[kind] + skipped
            adds += skipped
            skipped = 0
            weight = (conv_chars if kind == "CONV_2D" else dw_chars) + suffix[count]
            counters[kind] = count + 1
            # "<add>;<weight>;Const_<n>"
            bias = add_chars + suffix[adds] + weight + 2 + _CONST_CHARS + len(str(constant))
            adds += 1
            constant -= 2
            if op.padding == "SAME" and op.stride != (1, 1):
                # onnx2tf pads explicitly; the converter folds its PAD into this SAME convolution
                bias += pad_chars + suffix[pads_seen] + 2 + _CONST_CHARS + len(str(constant))
                pads_seen += 1
                constant -= 1
            activation = op.activation
            if activation in activation_chars:
                bias += activation_chars[activation] + suffix[counters[activation]]
                counters[activation] += 1
            names[inputs[1]] = weight
            if len(inputs) > 2 and inputs[2] >= 0:
                names[inputs[2]] = bias
            names[op.outputs[0]] = bias + 1
        elif kind == "ADD":
            if unclear:
                adds += _AMBIGUOUS_ADD_LAYERS
            names[op.outputs[0]] = add_chars + suffix[adds]
            adds += 1
        elif kind == "PAD":
            if unclear:
                skipped += _AMBIGUOUS_PAD_LAYERS
            names[inputs[1]] = _PADDINGS_CHARS
            names[op.outputs[0]] = pad_chars + suffix[pads_seen]
            pads_seen += 1
            constant -= 1
        elif kind == "MEAN":
            name = prefix + _LAYER_CHARS["mean"] + suffix[means]
            names[inputs[1]] = name + _MEAN_AXES_CHARS
            names[op.outputs[0]] = name
            means += 1
        elif kind == "FULLY_CONNECTED":
            names[inputs[1]] = prefix + _FC_WEIGHT_CHARS
            if len(inputs) > 2 and inputs[2] >= 0:
                names[inputs[2]] = prefix + _FC_BIAS_CHARS
    for index in graph.inputs:
        names[index] = _INPUT_CHARS
    for index in graph.outputs:
        names[index] = _OUTPUT_CHARS
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


def _tensor_bytes(tensors, name_chars) -> float:
    """Bytes of ``tensors``: overhead, shape vector, quantization vectors, constant buffer (with
    its length), and names of ``name_chars`` characters."""
    dims = channels = quantized = data = 0
    for tensor in tensors:
        dims += len(tensor.shape)
        if tensor.quant_channels:
            channels += tensor.quant_channels
            quantized += 1
        if tensor.is_constant:
            nbytes = prod(tensor.shape) * DTYPE_BYTES[tensor.dtype]
            data += LENGTH_BYTES + ((nbytes + ALIGNMENT_MASK) & ~ALIGNMENT_MASK)  # _aligned, inlined
    names = sum([(chars + 8) & -4 for chars in name_chars])  # _string_bytes, summed
    return (
        (TENSOR_OVERHEAD_BYTES + LENGTH_BYTES) * len(tensors)
        + 4 * dims
        + 2 * LENGTH_BYTES * quantized
        + QUANT_BYTES_PER_CHANNEL * channels
        + data
        + names
    )


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
    extras = _ONNX2TF_EXTRAS_BYTES
    name_chars = onnx2tf_name_chars(graph)
    total = FIXED_OVERHEAD_BYTES + extras + OPCODE_OVERHEAD_BYTES * len({op.kind for op in ops})
    total += (OPERATOR_OVERHEAD_BYTES + 2 * LENGTH_BYTES) * len(ops)
    total += 4 * sum([len(op.inputs) + len(op.outputs) for op in ops])
    total += _tensor_bytes(tensors, name_chars)
    duplicates = duplicate_constant_indices(graph)
    if duplicates:  # stored once by the converter
        total -= _tensor_bytes([tensors[i] for i in duplicates], [name_chars[i] for i in duplicates])
    return round(total)


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
