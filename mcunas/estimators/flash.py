"""Flash model: the size of the int8 ``.tflite`` file and of the TFLite Micro runtime code.

Two ways to the file size, by where the graph comes from:

* a graph imported from a file (:class:`~mcunas.graph.tflite.ImportedGraph`) is rebuilt with
  the flatbuffers builder from its contents (:mod:`mcunas.estimators.tflite_layout`): exact
  table, vtable, vector and alignment layout, within 1 % of the file down to 1 KB models;
* a search space's graph -- the file ``mcunas.export`` writes: onnx2tf 1.28 + TFLite converter
  of TF 2.21, stripped of what TFLite Micro does not read (:mod:`mcunas.export.strip`: no
  names, description, metadata or signatures; activations refer to the empty buffer 0) -- gets
  the closed-form model below (microseconds, the search's inner loop).

:func:`model_bytes` for a space graph is the exact terms of :func:`model_terms` (schema
``tensorflow/lite/schema/schema.fbs``; every vector and string has a 4-byte length, every
table is reached through a 4-byte offset) plus fitted overheads:

* exact: per stored tensor its offset and shape vector; per quantized tensor its float32
  scales and int64 zero points (one per channel) with their lengths; per constant its Buffer's
  offset and data (padded to 4 bytes); per operator its offset and input and output vectors;
* fitted: the tables and vtables (Tensor, QuantizationParameters, Buffer, Operator with its
  builtin options, OperatorCode, Model, SubGraph) and alignment padding: a fixed part (with
  the graph input's tensor and the classifier, which every space graph has once), one per
  distinct operator code, one per constant tensor, one per operator of each kind with its
  output tensor (:data:`OPERATOR_OVERHEAD_BYTES`).

The converter stores equal constants once (PADs adding the same padding share one paddings
tensor); such duplicates of a graph are not counted.

Fit: ``benchmarks/flash_fit.py`` (least squares on stripped exports of random architectures of
mobilenetv2, mobilenetv1 and cnn, default and tiny options; its output gives the constants
below and the in-sample and leave-one-out errors, see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from math import prod
from typing import NamedTuple

from mcunas.estimators.memory import duplicate_constant_indices
from mcunas.graph.ir import DTYPE_BYTES, Graph, Op, Tensor
from mcunas.graph.tflite import ImportedGraph

# Quantization parameters per channel: float32 scale + int64 zero point (schema.fbs).
QUANT_BYTES_PER_CHANNEL = 4 + 8
# The length prefix of every flatbuffer vector and string (uint32); the offset to a table.
LENGTH_BYTES = 4
OFFSET_BYTES = 4

# Fitted overheads (bytes), benchmarks/flash_fit.py: see the module docstring.
FIXED_OVERHEAD_BYTES = 421.16
OPCODE_OVERHEAD_BYTES = 30.70
CONSTANT_TENSOR_OVERHEAD_BYTES = 37.58
OPERATOR_OVERHEAD_BYTES: dict[str, float] = {
    "ADD": 63.70, "CONV_2D": 83.66, "DEPTHWISE_CONV_2D": 95.40, "FULLY_CONNECTED": 0.0, "MAX_POOL_2D": 85.60,
    "MEAN": 68.75, "PAD": 65.72,
}
# An op kind the fit did not see (the spaces emit none): the largest fitted operator overhead.
DEFAULT_OPERATOR_OVERHEAD_BYTES = max(OPERATOR_OVERHEAD_BYTES.values(), default=0.0)


class ModelTerms(NamedTuple):
    """What a stripped export's size is made of (see the module docstring).

    Attributes:
        exact_bytes: the terms that follow from the schema alone (bytes).
        opcodes: distinct operator kinds.
        constant_tensors: stored constant tensors.
        ops_per_kind: operators per kind.
    """

    exact_bytes: int
    opcodes: int
    constant_tensors: int
    ops_per_kind: dict[str, int]


def tensor_terms(tensors: Iterable[Tensor]) -> tuple[int, int]:
    """(exact bytes, constant tensors) that ``tensors`` add to a stripped export, each stored
    once (see the module docstring)."""
    exact = constants = 0
    for tensor in tensors:
        exact += OFFSET_BYTES + LENGTH_BYTES + 4 * len(tensor.shape)
        channels = tensor.quant_channels
        if channels:
            exact += 2 * LENGTH_BYTES + QUANT_BYTES_PER_CHANNEL * channels
        if tensor.is_constant:
            constants += 1
            exact += OFFSET_BYTES + LENGTH_BYTES + ((prod(tensor.shape) * DTYPE_BYTES[tensor.dtype] + 3) & -4)
    return exact, constants


def op_terms(ops: Iterable[Op]) -> int:
    """The exact bytes that ``ops`` add to a stripped export (offset, input and output vectors)."""
    return sum([OFFSET_BYTES + 2 * LENGTH_BYTES + 4 * (len(op.inputs) + len(op.outputs)) for op in ops])


def model_terms(graph: Graph) -> ModelTerms:
    """The exact terms and the counts the fitted overheads multiply, for a space graph's export."""
    duplicates = duplicate_constant_indices(graph) if any(op.kind == "PAD" for op in graph.ops) else ()
    exact, constants = tensor_terms([tensor for tensor in graph.tensors if tensor.index not in duplicates])
    ops_per_kind: dict[str, int] = {}
    for op in graph.ops:
        ops_per_kind[op.kind] = ops_per_kind.get(op.kind, 0) + 1
    return ModelTerms(exact + op_terms(graph.ops), len(ops_per_kind), constants, ops_per_kind)


def bytes_of_terms(terms: ModelTerms) -> int:
    """The predicted file size (bytes) of an export of ``terms``: the exact terms plus the fitted
    overheads (kinds added in the order of ``terms.ops_per_kind``)."""
    total = (FIXED_OVERHEAD_BYTES + OPCODE_OVERHEAD_BYTES * terms.opcodes + terms.exact_bytes
             + CONSTANT_TENSOR_OVERHEAD_BYTES * terms.constant_tensors)
    for kind, count in terms.ops_per_kind.items():
        total += count * OPERATOR_OVERHEAD_BYTES.get(kind, DEFAULT_OPERATOR_OVERHEAD_BYTES)
    return round(total)


def model_bytes(graph: Graph) -> int:
    """Predicted size (bytes) of the int8 ``.tflite`` file of ``graph``.

    A graph imported from a file (:class:`~mcunas.graph.tflite.ImportedGraph`) is rebuilt with
    the flatbuffers builder from its contents (:func:`mcunas.estimators.tflite_layout.layout_bytes`,
    within 1 % down to 1 KB files); the file size it carries is not used. Any other graph (a
    search space's: the stripped file ``mcunas.export`` writes) gets the closed-form model of
    the module docstring, fast enough for the search's thousands of estimates per second.
    """
    if isinstance(graph, ImportedGraph):
        from mcunas.estimators.tflite_layout import layout_bytes

        return layout_bytes(graph)
    return bytes_of_terms(model_terms(graph))


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


def runtime_code_bytes(op_kinds: Iterable[str], kernels: str = "cmsis-nn", core: str = "cortex-m4") -> int:
    """Estimated TFLM runtime code (bytes) linked for a model using ``op_kinds``.

    Args:
        op_kinds: the op kinds registered in the ``MicroMutableOpResolver`` (repeats count once).
        kernels: ``"cmsis-nn"`` or ``"reference"``.
        core: core family (:data:`CORE_CODE_FACTOR`); unknown cores count as Thumb-2.

    See the constants above for provenance; this is an estimate (+-50%), not a measurement.
    """
    return _kinds_code_bytes(frozenset(op_kinds), kernels, core)


@lru_cache(maxsize=4096)
def _kinds_code_bytes(kinds: frozenset[str], kernels: str, core: str) -> int:
    """:func:`runtime_code_bytes` of a set of kinds (cached: a space has few distinct sets)."""
    total = CORE_RUNTIME_BYTES
    for kind in kinds:
        total += REFERENCE_KERNEL_BYTES.get(kind, DEFAULT_KERNEL_BYTES)
        if kernels == "cmsis-nn":
            total += CMSIS_NN_EXTRA_BYTES.get(kind, 0)
    return round(total * CORE_CODE_FACTOR.get(core, 1.0))
