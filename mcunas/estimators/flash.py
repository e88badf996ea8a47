"""Flash model: the size of the int8 ``.tflite`` file and of the TFLite Micro runtime code.

:func:`model_bytes` rebuilds the flatbuffer's size from the graph: constant buffers (weights
int8, biases int32, shape and padding tensors), each padded to 16 bytes (``force_align: 16`` on
``Buffer.data`` in schema.fbs); per quantized tensor a float32 scale and an int64 zero point per
channel; shape and operator index vectors (int32 plus a 4-byte length); tensor names as
length-prefixed, NUL-terminated, 4-aligned strings; and a per-tensor, per-operator and fixed
overhead (tables, vtables, offsets, operator codes, metadata, signature) fitted by least squares
on 32 int8 MobileNetV1/V2 models exported by ``mcunas.export`` (onnx2tf 1.28 + TFLite
converter of TF 2.21), residuals within +-51 bytes on files of 55-765 KB when the names are
known.

Tensor names: a :class:`~mcunas.graph.tflite.ImportedGraph` carries the file's own names and
they are used as they are. A graph from a search space has short synthetic names, so each tensor
is given the typical onnx2tf name length of its role, measured on 16 models exported each in a
fresh process (``isolate=True``, the pipeline's default), where names look like
``model/tf.nn.relu6_35/Relu6;model/tf.math.add_95/Add;...`` (fused biases). Conversions run
one after another in the same process get longer names (``model_13/...``: Keras numbers its
models), and files about 0.3% larger. Over the 32 exports the prediction from
``Space.graph(arch)`` is within 1% of the file size. The converter stores equal constants once:
PAD paddings tensors that a graph repeats are counted once
(:func:`mcunas.estimators.memory.duplicate_constant_indices`). Models converted by other
tools (e.g. the MLPerf Tiny files) carry other names and metadata: expect up to 10% error on those.
"""

from __future__ import annotations

from math import prod

from mcunas.estimators.memory import duplicate_constant_indices
from mcunas.graph.ir import DTYPE_BYTES, Graph
from mcunas.graph.tflite import ImportedGraph

# Buffer data alignment in the flatbuffer (schema.fbs: Buffer.data force_align 16).
BUFFER_ALIGNMENT = 16
# Quantization parameters per channel: float32 scale + int64 zero point (schema.fbs).
QUANT_BYTES_PER_CHANNEL = 4 + 8

# Fitted overheads (bytes), see the module docstring: per tensor (Tensor and Buffer tables,
# quantization table, offsets), per operator (Operator table, builtin options), fixed (model
# table, operator codes, subgraph, metadata buffers, signature definition, description).
TENSOR_OVERHEAD_BYTES = 71.27
OPERATOR_OVERHEAD_BYTES = 31.34
FIXED_OVERHEAD_BYTES = 762.07

# Typical tensor-name length (characters) of onnx2tf exports, by role: means over the tensors
# of 16 MobileNetV1/V2 models exported in fresh processes (ranges in brackets).
ONNX2TF_NAME_CHARS: dict[str, int] = {
    "activation": 78,  # [17, 150]
    "weight": 43,  # [29, 54]
    "bias": 96,  # [18, 149], the names of all the ops fused into the convolution
    "constant": 24,  # [7, 51] shapes, paddings, reduction axes
}

_WEIGHTED_KINDS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})


def _string_bytes(chars: int) -> int:
    """A flatbuffer string: 4-byte length, the characters and a NUL, padded to 4 bytes."""
    return 4 + ((chars + 1 + 3) & -4)


_TYPICAL_NAME_BYTES = {role: _string_bytes(chars) for role, chars in ONNX2TF_NAME_CHARS.items()}


def model_bytes(graph: Graph) -> int:
    """Predicted size (bytes) of the int8 ``.tflite`` file of ``graph``.

    Within 1% for models exported by ``mcunas.export`` (see the module docstring for the terms
    and their provenance); the file size an imported graph carries is not used.
    """
    tensors = graph.tensors
    total = FIXED_OVERHEAD_BYTES + (TENSOR_OVERHEAD_BYTES + 4) * len(tensors)
    weights: set[int] = set()
    biases: set[int] = set()
    for op in graph.ops:
        inputs = op.inputs
        total += OPERATOR_OVERHEAD_BYTES + 8 + 4 * (len(inputs) + len(op.outputs))
        if op.kind in _WEIGHTED_KINDS:
            weights.add(inputs[1])
            if len(inputs) > 2 and inputs[2] >= 0:
                biases.add(inputs[2])
    imported = isinstance(graph, ImportedGraph)
    names = _TYPICAL_NAME_BYTES
    duplicates = duplicate_constant_indices(graph)
    total -= (TENSOR_OVERHEAD_BYTES + 4) * len(duplicates)
    data = 0
    for tensor in tensors:
        if duplicates and tensor.index in duplicates:
            continue
        shape = tensor.shape
        data += 4 * len(shape) + QUANT_BYTES_PER_CHANNEL * tensor.quant_channels
        if tensor.is_constant:
            data += (prod(shape) * DTYPE_BYTES[tensor.dtype] + BUFFER_ALIGNMENT - 1) & -BUFFER_ALIGNMENT
            if not imported:
                index = tensor.index
                data += names["weight" if index in weights else "bias" if index in biases else "constant"]
        elif not imported:
            data += names["activation"]
        if imported:
            data += _string_bytes(len(tensor.name.encode("utf-8")))
    return round(total + data)


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
