"""Which TFLite Micro kernel runs for an op, and the loop counts its code implies.

The latency model (:mod:`mcunas.estimators.latency`) costs an op as a dot product of a few
*terms* (loop-iteration counts such as MACs, output elements, im2col windows) with fitted
instructions per unit. This module decides, from the op's shapes alone, which kernel variant the
library runs -- its *class* -- and computes that class's terms. Kernel selection follows the
sources of TFLite Micro (``tensorflow/lite/micro/kernels``) and of CMSIS-NN v7 (DSP extension
paths, the ones Cortex-M4/M7/M33 builds run):

==================== ====================================================================
class                kernel (CMSIS-NN build)
==================== ====================================================================
``conv_1x1``         1x1, stride 1, no padding: ``arm_convolve_1x1_s8_fast`` ->
                     ``arm_nn_mat_mult_nt_t_s8`` (2 output rows x 2 channels per pass; the
                     input offset is folded into per-channel sums of the weights, one pass
                     over the ``C_out x C_in`` weights; a scalar loop for ``C_in % 4``; a
                     slower single-row loop for an odd pixel count)
``conv``             every other CONV_2D: ``arm_convolve_s8`` -- im2col per output pixel
                     (``arm_memcpy_s8``/``arm_memset_s8`` per kernel tap, then
                     ``arm_s8_to_s16_unordered_with_offset`` over ``KH*KW*C_in``) and
                     ``arm_nn_mat_mult_kernel_s8_s16`` on column pairs, whose inner loop
                     runs over the column rounded up to 4; covers 1xN kernels and 1-channel
                     inputs, whose cost is the per-tap copy calls
``depthwise_3x3``    DEPTHWISE_CONV_2D 3x3, channel multiplier 1, padding <= 1:
                     ``arm_depthwise_conv_3x3_s8``
``depthwise``        other kernel sizes, multiplier 1: ``arm_depthwise_conv_s8_opt`` --
                     per pixel an im2col of ``KH*KW*C`` elements (``arm_q7_to_q15_with_offset``
                     per tap inside the input, ``memset`` for padding), then 4 channels x 2
                     taps per ``SMLAD`` step and a scalar tail for the odd tap
``depthwise_mult``   multiplier > 1: ``arm_depthwise_conv_s8`` (``depthwise_conv_s8_mult_4``
                     for multiples of 4, else the generic scalar loop) -- no data: assumed
``fully_connected``  ``arm_fully_connected_s8`` / ``..._per_channel_s8`` ->
                     ``arm_nn_vec_mat_mult_t_s8``
``pool``             AVERAGE_POOL_2D: ``arm_avgpool_s8`` -- per output pixel the window is
                     clipped to the input; the first tap inside copies ``C`` values into an
                     int32 buffer, every further tap adds ``C`` (``QADD``), then one rounded
                     division per output element (``window``: taps inside the input x ``C``;
                     the first tap's copy is counted with ``out``)
==================== ====================================================================

The reference build (TFLM's portable kernels, ``kernels/internal/reference/integer_ops``) runs
one loop nest per op kind: ``ConvPerChannel`` and ``DepthwiseConvPerChannel`` check every kernel
tap of every output element against the input bounds and multiply-accumulate the taps inside
(terms ``tap`` and ``mac``), ``FullyConnected(PerChannel)``, ``Add``, ``AveragePool`` (per output
element -- channel innermost of the pixel -- the clipped window bounds, one row loop per kernel row
inside the input, ``window_row``, one tap loop over the columns inside, ``window``, and a rounded
division, ``out``), ``PadImpl`` (10 comparisons per output element; copied and padded elements cost
differently), the reduce kernels of MEAN, ``Softmax`` (one row of ``element`` values per op in the
measured models; its count depends on the input data as well, see ``benchmarks/RESULTS.md``).

Classes without instruction data (``ASSUMED_CLASSES``) are costed from measured classes
through the rules in :mod:`mcunas.estimators.latency`; ops on int16 activations get the class
``<class>_int16`` (CMSIS-NN's ``*_s16`` kernels, 64-bit requantization), also assumed.

Besides its terms, every op with weights reports how many weight bytes its kernel reads from
the model (flash) per pass and how many passes it makes: the latency model turns that into
flash wait cycles (a data cache that holds the whole weight matrix makes later passes free).
Term units are counts per inference; the functions are pure and cached per op signature, so a
search that builds thousands of similar graphs computes each distinct op once.
"""

from __future__ import annotations

from functools import lru_cache
from math import prod
from typing import NamedTuple

from mcunas.graph.ir import Graph, Op

# Kernel libraries with an instruction model (Cortex-M4 instruction counts of TFLM builds).
LIBRARIES: tuple[str, ...] = ("cmsis-nn", "reference")

# Terms of a class, in the order of its coefficients.
_ELEMENTWISE = ("op", "element")
_REDUCE = ("op", "input", "out")
_CONV_TERMS = ("op", "mac", "out", "pixel", "window", "column")
_CMSIS: dict[str, tuple[str, ...]] = {
    "conv_1x1": ("op", "mac", "out", "weights", "odd_row", "tail"),
    "conv": _CONV_TERMS,
    "depthwise_3x3": ("op", "mac", "out", "pixel", "inside"),
    "depthwise": ("op", "mac", "out", "pixel", "window", "inside"),
    "fully_connected": ("op", "mac", "out", "tail"),
    "add": _ELEMENTWISE,
    "pool": ("op", "window", "out"),
    "mean": _REDUCE,
    "pad": ("op", "input", "padded", "rows"),
    "reshape": _ELEMENTWISE,
    "softmax": _ELEMENTWISE,
}
_REFERENCE: dict[str, tuple[str, ...]] = {
    "conv": ("op", "mac", "tap", "out", "pixel"),
    "depthwise": ("op", "mac", "tap", "out", "pixel"),
    "fully_connected": ("op", "mac", "out", "per_tensor_mac", "per_tensor_out"),
    "add": _ELEMENTWISE,
    "pool": ("op", "window", "window_row", "out"),
    "mean": _REDUCE,
    "pad": ("op", "input", "padded", "pixel"),
    "reshape": _ELEMENTWISE,
    "softmax": _ELEMENTWISE,
}
# Classes without instruction data in any build (costed by the rules of latency.ASSUMPTIONS).
_ASSUMED_SHARED: dict[str, tuple[str, ...]] = {
    "transpose_conv": _CONV_TERMS,
    "copy": _ELEMENTWISE,  # RESHAPE-like memcpy: SQUEEZE, EXPAND_DIMS
    "gather_copy": ("op", "element", "rows"),  # contiguous chunks: CONCATENATION, SPLIT*, PACK, UNPACK, SLICE
    "index_copy": _ELEMENTWISE,  # per-element index arithmetic: TRANSPOSE, STRIDED_SLICE, GATHER, RESIZE_NN
    "resize_bilinear": _ELEMENTWISE,
    "requantize": _ELEMENTWISE,  # QUANTIZE, DEQUANTIZE
    "elementwise_binary": _ELEMENTWISE,  # SUB, MUL
    "broadcast_binary": _ELEMENTWISE,  # ADD, SUB, MUL with broadcasting
    "activation": _ELEMENTWISE,  # LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, PRELU, RELU*
    "reduce": _REDUCE,  # SUM, REDUCE_MAX, ARG_MAX
    "log_softmax": _ELEMENTWISE,
    "other": _ELEMENTWISE,
}
# MAX_POOL_2D walks the windows of AVERAGE_POOL_2D (same terms per library).
CLASS_TERMS: dict[str, dict[str, tuple[str, ...]]] = {
    "cmsis-nn": {**_CMSIS, "depthwise_mult": ("op", "mac", "out", "pixel"), "max_pool": _CMSIS["pool"],
                 **_ASSUMED_SHARED},
    "reference": {**_REFERENCE, "max_pool": _REFERENCE["pool"], **_ASSUMED_SHARED},
}
# int16-activation variants of the MAC and element-wise classes (CMSIS-NN *_s16 kernels).
INT16_BASES: tuple[str, ...] = ("conv_1x1", "conv", "depthwise_3x3", "depthwise", "depthwise_mult",
                                "fully_connected", "add", "elementwise_binary", "broadcast_binary", "pool", "activation")
for _library, _classes in CLASS_TERMS.items():
    _classes.update({f"{name}_int16": _classes[name] for name in INT16_BASES if name in _classes})

# Classes with instruction data, per library; everything else is assumed.
MEASURED_CLASSES: dict[str, frozenset[str]] = {"cmsis-nn": frozenset(_CMSIS), "reference": frozenset(_REFERENCE)}

# Op kind -> class for the kinds without a shape-dependent choice (the IR's TFLite op names).
KIND_CLASSES: dict[str, str] = {
    "ADD": "add",
    "SUB": "elementwise_binary",
    "MUL": "elementwise_binary",
    "AVERAGE_POOL_2D": "pool",
    "MAX_POOL_2D": "max_pool",
    "MEAN": "mean",
    "SUM": "reduce",
    "REDUCE_MAX": "reduce",
    "ARG_MAX": "reduce",
    "PAD": "pad",
    "PADV2": "pad",
    "RESHAPE": "reshape",
    "SQUEEZE": "copy",
    "EXPAND_DIMS": "copy",
    "CONCATENATION": "gather_copy",
    "SPLIT": "gather_copy",
    "SPLIT_V": "gather_copy",
    "PACK": "gather_copy",
    "UNPACK": "gather_copy",
    "SLICE": "gather_copy",
    "STRIDED_SLICE": "index_copy",
    "TRANSPOSE": "index_copy",
    "GATHER": "index_copy",
    "RESIZE_NEAREST_NEIGHBOR": "index_copy",
    "RESIZE_BILINEAR": "resize_bilinear",
    "QUANTIZE": "requantize",
    "DEQUANTIZE": "requantize",
    "LOGISTIC": "activation",
    "TANH": "activation",
    "HARD_SWISH": "activation",
    "LEAKY_RELU": "activation",
    "PRELU": "activation",
    "RELU": "activation",
    "RELU6": "activation",
    "SOFTMAX": "softmax",
    "LOG_SOFTMAX": "log_softmax",
    "TRANSPOSE_CONV": "transpose_conv",
}


class OpTerms(NamedTuple):
    """The cost terms of one op for one kernel library.

    Attributes:
        op_class: the kernel class (a key of :data:`CLASS_TERMS` for the library).
        units: the class's term counts, in :data:`CLASS_TERMS` order.
        weight_bytes: bytes of the op's weight matrix (0 for ops without weights).
        weight_passes: how many times the kernel reads the whole matrix (output pixel pairs for
            the CMSIS-NN matrix kernels, output pixels for depthwise and reference loops).
    """

    op_class: str
    units: tuple[float, ...]
    weight_bytes: int
    weight_passes: int


def op_signature(graph: Graph, op: Op) -> tuple:
    """What the cost of ``op`` depends on: kind, geometry, input/output shapes, dtype, weight
    quantization (hashable; equal for equal ops of different graphs)."""
    tensors = graph.tensors
    indices = op.inputs
    shapes = tuple([tensors[i].shape if i >= 0 else None for i in indices])
    first = tensors[indices[0]] if indices and indices[0] >= 0 else None
    weights = tensors[indices[1]] if len(indices) > 1 and indices[1] >= 0 else None
    return (op.kind, shapes, tensors[op.outputs[0]].shape if op.outputs else (), op.kernel, op.stride, op.padding,
            first.dtype if first is not None else "", weights is not None and weights.quant_channels > 1)


def op_terms(graph: Graph, op: Op, library: str) -> OpTerms:
    """The class and terms of ``op`` in ``graph`` for ``library`` (one of :data:`LIBRARIES`)."""
    return signature_terms(op_signature(graph, op), library)


@lru_cache(maxsize=65536)
def signature_terms(signature: tuple, library: str) -> OpTerms:
    """The class and terms of the op of an :func:`op_signature` (cached)."""
    kind, inputs, out, kernel, stride, padding, dtype, per_channel = signature
    in_shape = inputs[0] if inputs and inputs[0] is not None else ()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        op_class, units, weight_bytes, passes = _conv_terms(kind, in_shape, out, inputs, kernel, stride, padding, library)
    elif kind == "FULLY_CONNECTED":
        op_class, units, weight_bytes, passes = _fc_terms(inputs, out, per_channel, library)
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        op_class = KIND_CLASSES[kind]
        units, weight_bytes, passes = _pool_terms(CLASS_TERMS[library][op_class], in_shape, out, kernel, stride,
                                                  padding), 0, 0
    else:
        op_class = KIND_CLASSES.get(kind, "other")
        if kind in ("ADD", "SUB", "MUL") and len(inputs) > 1 and inputs[0] != inputs[1]:
            op_class = "broadcast_binary"  # TFLM's BroadcastAdd4DSlow-style 4-D index walk
        units, weight_bytes, passes = _plain_terms(op_class, library, in_shape, out), 0, 0
    if dtype == "int16" and op_class in INT16_BASES:
        op_class = f"{op_class}_int16"
    return OpTerms(op_class, units, weight_bytes, passes)


def _same_padding(size: int, out: int, kernel: int, stride: int, padding: str | None) -> int:
    """Padding before the first row/column (TensorFlow SAME: the smaller half)."""
    if padding != "SAME":
        return 0
    return max((out - 1) * stride + kernel - size, 0) // 2


def _inside(out: int, size: int, kernel: int, stride: int, pad: int) -> int:
    """Kernel taps that fall inside the input, summed over the output positions of one axis."""
    total = 0
    for position in range(out):
        start = position * stride - pad
        total += max(0, min(kernel, size - start) - max(0, -start))
    return total


def _conv_terms(kind: str, in_shape: tuple, out: tuple, inputs: tuple, kernel: tuple, stride: tuple,
                padding: str | None, library: str) -> tuple[str, tuple[float, ...], int, int]:
    _, in_h, in_w, in_c = in_shape if kind != "TRANSPOSE_CONV" else inputs[2]
    _, out_h, out_w, out_c = out
    kernel_h, kernel_w = kernel or (1, 1)
    stride_h, stride_w = stride or (1, 1)
    pixels = out_h * out_w
    outputs = pixels * out_c
    taps = pixels * kernel_h * kernel_w
    if kind == "TRANSPOSE_CONV":  # costed as the convolution that computes its output
        column = in_c * kernel_h * kernel_w
        units = _dot_terms(_CONV_TERMS, op=1, mac=pixels * out_c * column, out=outputs, pixel=pixels,
                           window=taps, column=pixels * column)
        return "transpose_conv", units, out_c * column, (pixels + 1) // 2
    inside = (_inside(out_h, in_h, kernel_h, stride_h, _same_padding(in_h, out_h, kernel_h, stride_h, padding))
              * _inside(out_w, in_w, kernel_w, stride_w, _same_padding(in_w, out_w, kernel_w, stride_w, padding)))
    if kind == "CONV_2D":
        column = kernel_h * kernel_w * in_c
        weight_bytes = out_c * column
        if library == "reference":
            units = (1, inside * in_c * out_c, taps * out_c, outputs, pixels)
            return "conv", units, weight_bytes, pixels
        if (kernel_h, kernel_w) == (1, 1) and (stride_h, stride_w) == (1, 1):
            units = (1, pixels * out_c * in_c, outputs, out_c * in_c, (pixels % 2) * out_c * in_c, (in_c % 4) * outputs)
            return "conv_1x1", units, weight_bytes, (pixels + 1) // 2
        aligned = -(-column // 4) * 4  # the s16 column is padded to a multiple of 4
        units = (1, pixels * out_c * aligned, outputs, pixels, taps, pixels * column)
        return "conv", units, weight_bytes, (pixels + 1) // 2
    multiplier = out_c // in_c if in_c else 1
    weight_bytes = kernel_h * kernel_w * out_c
    macs = taps * out_c
    if library == "reference":
        return "depthwise", (1, inside * out_c, macs, outputs, pixels), weight_bytes, pixels
    if multiplier != 1:
        return "depthwise_mult", (1, inside * out_c, outputs, pixels), weight_bytes, pixels
    if (kernel_h, kernel_w) == (3, 3):  # SAME padding of a 3x3 kernel is at most 1
        return "depthwise_3x3", (1, macs, outputs, pixels, inside * out_c), weight_bytes, pixels
    return "depthwise", (1, macs, outputs, pixels, taps, inside * out_c), weight_bytes, pixels


def _pool_terms(names: tuple[str, ...], in_shape: tuple, out: tuple, kernel: tuple | None, stride: tuple | None,
                padding: str | None) -> tuple[float, ...]:
    """Pooling terms: taps and kernel rows inside the input (both kernels clip the window to it)."""
    _, in_h, in_w, _ = in_shape
    _, out_h, out_w, channels = out
    kernel_h, kernel_w = kernel or (1, 1)
    stride_h, stride_w = stride or (1, 1)
    rows_inside = _inside(out_h, in_h, kernel_h, stride_h, _same_padding(in_h, out_h, kernel_h, stride_h, padding))
    columns_inside = _inside(out_w, in_w, kernel_w, stride_w, _same_padding(in_w, out_w, kernel_w, stride_w, padding))
    return _dot_terms(names, op=1, window=rows_inside * columns_inside * channels,
                      window_row=rows_inside * out_w * channels, out=out_h * out_w * channels)


def _fc_terms(inputs: tuple, out: tuple, per_channel: bool, library: str) -> tuple[str, tuple[float, ...], int, int]:
    out_n, in_n = inputs[1]
    macs = out_n * in_n
    outputs = prod(out)
    if library == "reference":
        per_tensor = 0 if per_channel else 1
        units = (1, macs, outputs, per_tensor * macs, per_tensor * outputs)
    else:
        units = (1, macs, outputs, (in_n % 4) * out_n)
    return "fully_connected", units, macs, 1


def _plain_terms(op_class: str, library: str, in_shape: tuple, out: tuple) -> tuple[float, ...]:
    """Terms of ops without weights: elements, inputs, padded elements, rows, windows."""
    elements = prod(out) if out else 0
    inputs = prod(in_shape) if in_shape else 0
    rows = prod(out[:-1]) if len(out) > 1 else 1
    values = {"op": 1, "element": elements, "input": inputs, "out": elements, "padded": max(elements - inputs, 0),
              "rows": prod(out[:-2]) if len(out) > 2 else 1, "pixel": rows}
    if op_class == "gather_copy":
        values["rows"] = rows  # one memcpy per contiguous chunk (assumption: the innermost axis)
    return tuple(values[term] for term in CLASS_TERMS[library][op_class])


def _dot_terms(names: tuple[str, ...], **values: float) -> tuple[float, ...]:
    return tuple(values[name] for name in names)
