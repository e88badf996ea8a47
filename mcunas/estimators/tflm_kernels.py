"""What each TFLite Micro kernel allocates in the arena, per op kind: the tables of the arena model.

:mod:`mcunas.estimators.memory` replays TFLM's allocation sequence; this module says, for one op,
what its kernel adds to it:

* the builtin parameter struct the flatbuffer parser allocates (:data:`BUILTIN_PARAMS`);
* the ``OpData`` its ``Init`` allocates (:data:`OP_DATA`, per build);
* the persistent buffers its ``Prepare`` allocates (:func:`persistent_buffers`: per-channel
  quantization arrays, int16 softmax lookup tables);
* the scratch buffers its ``Prepare`` requests (:func:`scratch_requests`), with the
  reference and the CMSIS-NN kernels.

Builds: ``("host", kernels)`` is the 64-bit interpreter of the ``tflite-micro`` Python package
(build 0.dev20261023, TFLM compression support compiled in); ``("cortex-m", kernels)`` a 32-bit
microcontroller build (the measured one: TFLM 90b983c2 of 2026-08-20 with CMSIS-NN
v7.0.0-43-g99f736a6, ``space-instruction-counts.json``). Kernels: ``"reference"`` or
``"cmsis-nn"``.

Provenance. Host values are measured: the recording allocator's ``Persistent buffer data`` of
single-op models (``tests/model_zoo.py``) gives each OpData and Prepare allocation, the head
its scratch buffers. 32-bit values follow the struct layouts of the TFLM sources named below
with 4-byte pointers; where the 32-bit build (two months older than the host package) differs,
the value is the one the 40 measured 32-bit arenas require, marked *fitted*
(``benchmarks/arena_vs_tflm.py --space`` prints the check).
"""

from __future__ import annotations

from mcunas.graph.ir import Graph, Op

# Builtin parameter structs (tensorflow/lite/core/c/builtin_op_data.h, allocated by the parsers of
# tensorflow/lite/core/api/flatbuffer_conversions.cc): (bytes, alignment), the same on 32 and 64
# bits (ints, enums, floats and bools only). Kinds absent here allocate none (PAD, SLICE,
# TRANSPOSE, EXPAND_DIMS, QUANTIZE, DEQUANTIZE, activations, LOG_SOFTMAX, PRELU).
BUILTIN_PARAMS: dict[str, tuple[int, int]] = {
    "CONV_2D": (28, 4),  # TfLiteConvParams: 7 x int/enum
    "DEPTHWISE_CONV_2D": (28, 4),  # TfLiteDepthwiseConvParams: 7 x int/enum
    "TRANSPOSE_CONV": (20, 4),  # TfLiteTransposeConvParams: padding, 2 strides, activation, bias type
    "AVERAGE_POOL_2D": (40, 4),  # TfLitePoolParams: 6 x int/enum + TfLitePaddingValues (16)
    "MAX_POOL_2D": (40, 4),
    "FULLY_CONNECTED": (16, 4),  # TfLiteFullyConnectedParams: 2 enums, 2 bools, 1 enum
    "RESHAPE": (36, 4),  # TfLiteReshapeParams: int shape[8] + num_dimensions
    "SQUEEZE": (36, 4),  # TfLiteSqueezeParams: int squeeze_dims[8] + num_squeeze_dims
    "SOFTMAX": (4, 4),  # TfLiteSoftmaxParams: float beta
    "ADD": (8, 4),  # TfLiteAddParams: enum + bool
    "SUB": (8, 4),  # TfLiteSubParams: enum + bool
    "MUL": (4, 4),  # TfLiteMulParams: enum
    "CONCATENATION": (8, 4),  # TfLiteConcatenationParams: axis + enum
    "MEAN": (1, 1),  # TfLiteReducerParams: bool keep_dims
    "SUM": (1, 1),
    "REDUCE_MAX": (1, 1),
    "LEAKY_RELU": (4, 4),  # TfLiteLeakyReluParams: float alpha
    "STRIDED_SLICE": (24, 4),  # TfLiteStridedSliceParams: 5 masks + bool offset
    "SPLIT": (4, 4),  # TfLiteSplitParams: num_splits
    "SPLIT_V": (4, 4),  # TfLiteSplitVParams: num_splits
    "PACK": (8, 4),  # TfLitePackParams: values_count, axis
    "UNPACK": (8, 4),  # TfLiteUnpackParams: num, axis
    "RESIZE_NEAREST_NEIGHBOR": (2, 1),  # TfLiteResizeNearestNeighborParams: 2 bools
    "RESIZE_BILINEAR": (2, 1),  # TfLiteResizeBilinearParams: 2 bools
    "GATHER": (8, 4),  # TfLiteGatherParams: axis, batch_dims
    "ARG_MAX": (4, 4),  # TfLiteArgMaxParams: output_type
}

# OpData bytes allocated by each kernel's Init (only the size rounded up to 16 matters: kernel
# buffers are 16-byte aligned). Kinds absent allocate none (RESHAPE, SQUEEZE, EXPAND_DIMS,
# TRANSPOSE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK, RESIZE_*, ARG_MAX).
# Host: measured (recording allocator) for every kind; the package's kernels carry TFLM
# compression fields (e.g. two scratch indices in fully_connected.h OpDataFullyConnected).
_OP_DATA_HOST = {
    "CONV_2D": 80,
    "DEPTHWISE_CONV_2D": 80,
    "TRANSPOSE_CONV": 88,  # transpose_conv.cc OpData: ConvParams (56) + 2 indices + 2 pointers + compression
    "FULLY_CONNECTED": 72,
    "AVERAGE_POOL_2D": 32,  # pooling.h OpDataPooling: TfLitePaddingValues + 4 x 4
    "MAX_POOL_2D": 32,
    "MEAN": 44,  # reduce.h OpDataReduce: 11 x 4
    "SUM": 44,
    "REDUCE_MAX": 44,
    "SOFTMAX": 80,  # kernels/internal/types.h SoftmaxParams (double, ints, 5 table pointers)
    "LOG_SOFTMAX": 40,  # log_softmax.cc LogSoftmaxOpData: 5 x int32 + 2 x size_t
    "PAD": 56,  # pad.cc OpData: PadParams (52) + int32
    "ADD": 60,  # add.h OpDataAdd: 15 x int32
    "SUB": 52,  # sub.h OpDataSub: 13 x int32
    "MUL": 36,  # mul.h OpDataMul: 9 x 4
    "CONCATENATION": 80,
    "STRIDED_SLICE": 84,  # strided_slice.h StridedSliceParams: 3 x (int8 count + int32[5]) + masks
    "GATHER": 20,
    "HARD_SWISH": 20,  # HardSwishParams
    "LEAKY_RELU": 24,  # leaky_relu.h LeakyReluOpData: 6 x int32
    "PRELU": 28,  # PreluParams: 7 x int32
    "RELU": 28,
    "RELU6": 8,  # Relu6OpData: 2 x int8 + 2 x int16
    "LOGISTIC": 16,  # logistic.h OpDataLogistic: 4 x int32
    "TANH": 16,
    "QUANTIZE": 32,  # quantize.h OpDataQuantizeReference: QuantizationParams (16) + 3 x int32
    "DEQUANTIZE": 32,  # dequantize.h DequantizeOpData
}
# CMSIS-NN wrappers (kernels/cmsis_nn/*.cc) embed the reference OpData and add a scratch-buffer
# index (conv, depthwise, pooling: +4); their fully-connected OpData adds 2 per-channel
# pointers, the index, a kernel-sums pointer and 3 x int32; transpose_conv.cc's own OpData has
# 3 indices (reverse-conv buffer) and 2 pointers. Host CMSIS-NN values are derived, not measured.
_OP_DATA_HOST_CMSIS = {
    **_OP_DATA_HOST,
    "CONV_2D": 84,
    "DEPTHWISE_CONV_2D": 84,
    "FULLY_CONNECTED": 120,
    "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36,
    "TRANSPOSE_CONV": 88,
}
# 32-bit (no compression fields, 4-byte pointers): conv.h OpDataConv (TfLitePaddingValues 16,
# 5 x int32, 2 per-channel pointers, 2 x int32 activation range, buffer indices),
# fully_connected.h OpDataFullyConnected (8 x int32 on the measured build), transpose_conv.cc
# OpData (ConvParams 56 + 2 indices + 2 pointers), log_softmax.cc (5 x int32 + 2 x size_t).
# SOFTMAX 48 is fitted (the 8 MLPerf Tiny arenas; layout alone allows 48..64); CONCATENATION
# (48) follows the layout with 4-byte pointers but is not checked against a 32-bit build.
_OP_DATA_32 = {
    **_OP_DATA_HOST,
    "CONV_2D": 60,
    "DEPTHWISE_CONV_2D": 60,
    "TRANSPOSE_CONV": 72,
    "FULLY_CONNECTED": 32,
    "SOFTMAX": 48,
    "LOG_SOFTMAX": 28,
    "CONCATENATION": 48,
}
_OP_DATA_32_CMSIS = {
    **_OP_DATA_32,
    "CONV_2D": 64,
    "DEPTHWISE_CONV_2D": 64,
    "FULLY_CONNECTED": 60,
    "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36,
    "TRANSPOSE_CONV": 76,
}
OP_DATA: dict[tuple[str, str], dict[str, int]] = {
    ("host", "reference"): _OP_DATA_HOST,
    ("host", "cmsis-nn"): _OP_DATA_HOST_CMSIS,
    ("cortex-m", "reference"): _OP_DATA_32,
    ("cortex-m", "cmsis-nn"): _OP_DATA_32_CMSIS,
}

# Where the measured 32-bit build differs from the host package beyond struct sizes (fitted on
# the 40 measured 32-bit arenas, see the module docstring):
# * int8/int16 MEAN and SUM request one scratch buffer (the int32 sums; reduce_common.cc's
#   PrepareMeanOrSumHelper of that era), the host package three (also two index arrays);
# * TfLiteAddParams takes 4 bytes (no pot_scale_int16 field);
# * a per-channel FULLY_CONNECTED allocates its multiplier and shift arrays 16 bytes smaller
#   in total (only their sum is visible in the data).
CORTEX_M_MEAN_SCRATCH_REQUESTS = 1
CORTEX_M_BUILTIN_PARAMS = {**BUILTIN_PARAMS, "ADD": (4, 4)}
CORTEX_M_PER_CHANNEL_FC_DELTA_BYTES = -16

# Zero-byte scratch requests per op kind (a handle each, no arena head): FULLY_CONNECTED asks
# for decompression scratch buffers of its weights (and bias) even when they are not compressed:
# 2 in the host package (16 otherwise unexplained tail bytes per FULLY_CONNECTED), 1 in the
# 32-bit build (fitted).
EMPTY_SCRATCH_REQUESTS: dict[str, dict[str, int]] = {"host": {"FULLY_CONNECTED": 2}, "cortex-m": {"FULLY_CONNECTED": 1}}

# Kernels whose Prepare allocates per-output-channel quantization: two int32 arrays (multiplier,
# shift) of C_out entries (conv_common.cc, depthwise_conv_common.cc, transpose_conv.cc,
# fully_connected_common.cc; FULLY_CONNECTED only for per-channel weights).
PER_CHANNEL_KINDS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"})
# int16 SOFTMAX (softmax_common.cc SoftmaxPrepare): exp and 1/(1+x) lookup tables of 513 int16
# each, persistent (measured: 2 x 1026 bytes).
_SOFTMAX_INT16_LUT_BYTES = 2 * 513
# Kinds that request scratch buffers with some kernel library and element type.
SCRATCH_KINDS = frozenset(
    {"MEAN", "SUM", "REDUCE_MAX", "TRANSPOSE_CONV", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D"}
)
# CMSIS-NN arm_transpose_conv_s8: the reverse-convolution route is taken for strides <= 2 and
# more than REVERSE_TCOL_EFFICIENT_THRESHOLD (16) input channels (arm_nnsupportfunctions.h).
_REVERSE_TCOL_THRESHOLD = 16


def _align4(n: int) -> int:
    return (n + 3) & -4


def persistent_buffers(graph: Graph, op: Op, fully_connected_delta: int = 0) -> list[int]:
    """Bytes of each persistent buffer the kernel of ``op`` allocates in Prepare (before the
    16-byte alignment every such buffer gets); the same with both kernel libraries.

    ``fully_connected_delta`` adjusts a per-channel FULLY_CONNECTED's pair (see
    :data:`CORTEX_M_PER_CHANNEL_FC_DELTA_BYTES`).
    """
    kind = op.kind
    tensors = graph.tensors
    if kind in PER_CHANNEL_KINDS:
        if kind == "FULLY_CONNECTED":
            if tensors[op.inputs[1]].quant_channels <= 1:
                return []
            channels = tensors[op.outputs[0]].shape[-1]
            return [4 * channels, 4 * channels + fully_connected_delta]
        if kind == "TRANSPOSE_CONV":
            channels = tensors[op.inputs[1]].shape[0]
        else:
            channels = tensors[op.outputs[0]].shape[-1]
        return [4 * channels, 4 * channels]
    if kind == "SOFTMAX" and tensors[op.inputs[0]].dtype == "int16":
        return [_SOFTMAX_INT16_LUT_BYTES, _SOFTMAX_INT16_LUT_BYTES]
    return []


def scratch_requests(graph: Graph, op: Op, kernels: str, mean_requests: int = 3) -> list[int]:
    """Bytes of each scratch buffer the kernel of ``op`` requests in Prepare, in request order
    (a 0 is a request of no bytes: a handle, no arena head).

    Reference kernels (tensorflow/lite/micro/kernels/): MEAN and SUM (reduce_common.cc
    PrepareMeanOrSumHelper) int32 sums per output element, then (host package) int32 arrays of
    the input rank and of the axis count (``mean_requests`` = 3; the 32-bit build requests the
    sums only); REDUCE_MAX (PrepareMaxHelper) the rank and axis-count arrays; TRANSPOSE_CONV
    (transpose_conv.cc) int32 (int16: int64) accumulators per output element.

    CMSIS-NN (kernels/cmsis_nn/ wrappers around the Arm CMSIS-NN get_buffer_size functions, DSP
    path of Cortex-M4/M7/M33): CONV_2D int8 ``arm_convolve_wrapper_s8_get_buffer_size``: none for
    unpadded 1x1, else ``2 * align4(KH*KW*Cin)`` int16 (the 1xN path asks the same);
    int16 ``arm_convolve_wrapper_s16_get_buffer_size_dsp``: ``2 * KH*KW*Cin`` int16 when
    ``KH*KW*Cin < 512``; DEPTHWISE_CONV_2D ``arm_depthwise_conv_wrapper_s8_get_buffer_size``
    (and ``_s16``): only with depth multiplier 1 and no dilation, int8 none for 3x3 with
    padding <= 1, else ``Cin*KH*KW`` int16 (int16: kernel area < 512);
    AVERAGE_POOL_2D ``arm_avgpool_s8_get_buffer_size`` C int32; TRANSPOSE_CONV int8
    ``arm_transpose_conv_s8_get_buffer_size`` and ``..._get_reverse_conv_buffer_size`` (two
    requests, also of 0 bytes). CMSIS-NN requests nothing when the size is 0 (buffer index -1),
    except for TRANSPOSE_CONV. Reductions run the reference kernels in both builds.
    """
    kind = op.kind
    if kind not in SCRATCH_KINDS:
        return []
    tensors = graph.tensors
    if kind in ("MEAN", "SUM"):
        rank_bytes = 4 * len(tensors[op.inputs[0]].shape)
        axis_bytes = 4 * tensors[op.inputs[1]].num_elements
        return [4 * tensors[op.outputs[0]].num_elements, rank_bytes, axis_bytes][:mean_requests]
    if kind == "REDUCE_MAX":
        return [4 * len(tensors[op.inputs[0]].shape), 4 * tensors[op.inputs[1]].num_elements]
    if kind == "TRANSPOSE_CONV":
        return _transpose_conv_scratch(graph, op, kernels)
    if kernels != "cmsis-nn":
        return []
    if kind == "AVERAGE_POOL_2D":
        return [4 * tensors[op.outputs[0]].shape[-1]]
    input_shape = tensors[op.inputs[0]].shape
    _, kh, kw, weight_channels = tensors[op.inputs[1]].shape
    dilated = op.dilation is not None and op.dilation != (1, 1)
    int16 = tensors[op.inputs[0]].dtype == "int16"
    if kind == "CONV_2D":
        cols = kh * kw * weight_channels
        if int16:  # arm_convolve_wrapper_s16_get_buffer_size_dsp: the fast kernel's im2col
            return [2 * cols * 2] if cols < 512 and not dilated else []
        if (kh, kw) == (1, 1) and not dilated:  # 1x1 (unpadded by construction): no buffer
            return []
        return [2 * _align4(cols) * 2]
    # DEPTHWISE_CONV_2D: the optimized kernels need depth multiplier 1 and no dilation
    in_channels = input_shape[-1]
    if in_channels != tensors[op.outputs[0]].shape[-1] or dilated:
        return []
    if int16:  # USE_FAST_DW_CONV_S16_FUNCTION: kernel area < 512
        return [in_channels * kh * kw * 2] if kh * kw < 512 else []
    if (kh, kw) == (3, 3):  # SAME/VALID pad a 3x3 kernel by at most 1: the 3x3 fast path
        return []
    return [in_channels * kh * kw * 2]


def _transpose_conv_scratch(graph: Graph, op: Op, kernels: str) -> list[int]:
    tensors = graph.tensors
    output = tensors[op.outputs[0]]
    if output.dtype == "int16":
        return [8 * output.num_elements]
    if kernels != "cmsis-nn":
        return [4 * output.num_elements]
    c_out, kh, kw, c_in = tensors[op.inputs[1]].shape
    _, h_in, w_in, _ = tensors[op.inputs[2]].shape
    stride_h, stride_w = op.stride or (1, 1)
    if stride_h <= 2 and stride_w <= 2 and c_in > _REVERSE_TCOL_THRESHOLD:
        # arm_convolve_s8_get_buffer_size of the reverse convolution, and the reversed filter
        return [2 * _align4(kh * kw * c_in) * 2, c_in * kw * kh * c_out]
    buf_x = ((w_in - 1) * stride_w + max(kw, stride_h)) * output.shape[-1]
    return [buf_x * max(kh, stride_h) * 4, 0]
