"""TFLite Micro tensor-arena model: the bytes ``MicroInterpreter::arena_used_bytes()`` reports.

The arena has two parts, and this module rebuilds both from a :class:`~mcunas.graph.ir.Graph`:

* the **head** (non-persistent): activations and kernel scratch buffers, placed by TFLM's
  ``GreedyMemoryPlanner`` (``tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc``)
  from the lifetimes of ``micro_allocation_info.cc``; reproduced exactly in :func:`plan_bytes`;
* the **tail** (persistent): allocator objects, ``TfLiteEvalTensor`` and ``NodeAndRegistration``
  arrays, builtin op parameters, each kernel's ``OpData`` and per-channel quantization arrays,
  scratch-buffer handles, and the ``TfLiteTensor`` structs of the graph inputs and outputs;
  reproduced by replaying TFLM's allocation sequence (``micro_allocator.cc``,
  ``micro_interpreter.cc``) with each allocation's size and alignment on the target, in
  :func:`tail_bytes`.

Targets: ``"host"`` is the 64-bit interpreter of the ``tflite-micro`` Python package (what
:func:`mcunas.tflm.measure_arena_bytes` measures; its allocator is the recording variant);
``"cortex-m"`` is a 32-bit microcontroller build (``TF_LITE_STATIC_MEMORY``, plain
``MicroAllocator``). Kernels: ``"reference"`` (portable C++) or ``"cmsis-nn"`` (Arm CMSIS-NN
wrappers, which add a scratch-buffer index to their OpData and request scratch buffers).

Every planned buffer and every kernel persistent buffer is 16-byte aligned
(``MicroArenaBufferAlignment()``, micro_arena_constants.h).

Provenance of the constants (see each table): struct layouts from the TFLM sources named there.
Host sizes are confirmed against the recording allocator's per-category report of the
``tflite-micro`` package (build 0.dev20261023); the host prediction equals the measured arena
exactly on 33 int8 models (4 MLPerf Tiny, 13 Keras-converted, 16 exported by mcunas.export).
The 32-bit build is known only through 8 totals (4 MLPerf Tiny models x 2 kernel libraries,
``cortex-m4-instruction-counts.json``); four of its values are fitted to them (bootstrap bytes,
TfLiteTensor size, SOFTMAX OpData, empty FULLY_CONNECTED scratch requests), after which 7 of the
8 agree exactly and one is 16 bytes high -- a good fit, but on few data points.
Assumptions: one subgraph, no offline-planned buffers, no variable tensors.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from math import prod

from mcunas.graph.ir import DTYPE_BYTES, Graph

TARGETS = ("cortex-m", "host")
KERNELS = ("cmsis-nn", "reference")

# Builtin parameter structs allocated per op by the flatbuffer parsers
# (tensorflow/lite/core/c/builtin_op_data.h, parsed in flatbuffer_conversions.cc):
# (bytes, alignment); the same on 32- and 64-bit (ints, enums and bools only). PAD, QUANTIZE,
# DEQUANTIZE, RELU*, LOGISTIC and HARD_SWISH allocate none.
_BUILTIN_PARAMS: dict[str, tuple[int, int]] = {
    "CONV_2D": (28, 4),  # TfLiteConvParams: 7 x int/enum
    "DEPTHWISE_CONV_2D": (28, 4),  # TfLiteDepthwiseConvParams: 7 x int/enum
    "AVERAGE_POOL_2D": (40, 4),  # TfLitePoolParams: 6 x int/enum + TfLitePaddingValues (16)
    "MAX_POOL_2D": (40, 4),
    "FULLY_CONNECTED": (16, 4),  # TfLiteFullyConnectedParams: 2 enums, 2 bools, 1 enum
    "RESHAPE": (36, 4),  # TfLiteReshapeParams: int shape[8] + num_dimensions
    "SOFTMAX": (4, 4),  # TfLiteSoftmaxParams: float beta
    "ADD": (8, 4),  # TfLiteAddParams: enum + bool
    "MUL": (4, 4),  # TfLiteMulParams: enum
    "CONCATENATION": (8, 4),  # TfLiteConcatenationParams: axis + enum
    "MEAN": (1, 1),  # TfLiteReducerParams: bool keep_dims
}

# Kernels that own per-output-channel quantization: their Prepare allocates two int32 arrays
# (multiplier, shift) of C_out entries each, as 16-byte-aligned persistent buffers
# (kernels/conv_common.cc, depthwise_conv_common.cc, fully_connected_common.cc). FULLY_CONNECTED
# does so only for per-channel weights.
_PER_CHANNEL_KINDS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})


@dataclass(frozen=True, slots=True)
class _Build:
    """Struct sizes (bytes) of one TFLM build; see the module docstring for their provenance."""

    pointer: int
    # Allocator objects created before the model (SingleArenaBufferAllocator, GreedyMemoryPlanner,
    # MicroAllocator; the recording variants on the host): calibrated, see _BUILDS.
    bootstrap: int
    eval_tensor: int  # TfLiteEvalTensor {data ptr, dims ptr, TfLiteType}
    node_and_registration: int  # NodeAndRegistration {TfLiteNode (6 ptrs + int), registration ptr}
    tflite_tensor: int  # TfLiteTensor under TF_LITE_STATIC_MEMORY
    affine_quantization: int  # TfLiteAffineQuantization {scale ptr, zero_point ptr, int32}
    # Kernel OpData structs allocated in Init (16-byte aligned), by op kind and kernel library.
    op_data: dict[str, int]
    # Zero-byte scratch-buffer requests per op kind: they cost a handle each, no arena head.
    empty_scratch: dict[str, int]


# OpData sizes (bytes) allocated by each kernel's Init. Layout sources: kernels/conv.h
# OpDataConv (TfLitePaddingValues 16, 5 x int32, 2 per-channel pointers, 2 x int32 activation
# range, buffer indices), fully_connected.h OpDataFullyConnected (8 x int32 on the Cortex-M4
# build), pooling.h OpDataPooling (16 + 4 x 4), reduce.h OpDataReduce (11 x int32),
# kernels/internal/types.h SoftmaxParams, pad.cc OpData (PadParams 52 + int32), add.h OpDataAdd
# (15 x int32). The CMSIS-NN wrappers (kernels/cmsis_nn/*.cc) embed the reference OpData and
# add an int32 scratch-buffer index (conv, depthwise, pooling: +4); their fully-connected OpData
# adds 2 per-channel pointers, the index, a kernel-sums pointer and 3 x int32 (+28 on 32-bit).
# Only the size rounded up to 16 matters (kernel buffers are 16-byte aligned).
# Host values: the recording allocator's 'Persistent buffer data' per op of the tflite-micro
# package (measured for every kind except RELU6, QUANTIZE, DEQUANTIZE), which is built with
# more fields (e.g. compression buffer indices) than the Cortex-M4 build of the JSON. 32-bit
# SOFTMAX (48) is the value that makes the 8 Cortex-M4 arenas agree (layout alone allows
# 48..64); 32-bit values of kinds absent from the MLPerf Tiny models (MEAN, PAD, MUL,
# CONCATENATION, activations, (DE)QUANTIZE) follow the layouts but are not checked against a
# 32-bit build. Host CMSIS-NN values are derived, not measured.
_OP_DATA_HOST = {
    "CONV_2D": 80,
    "DEPTHWISE_CONV_2D": 80,
    "FULLY_CONNECTED": 72,
    "AVERAGE_POOL_2D": 32,
    "MAX_POOL_2D": 32,
    "MEAN": 44,
    "SOFTMAX": 80,
    "PAD": 56,
    "ADD": 60,
    "MUL": 36,
    "CONCATENATION": 80,
    "HARD_SWISH": 20,
    "RELU": 28,
    "LOGISTIC": 16,
    "RELU6": 8,  # Relu6OpData: 2 x int8 + 2 x int16 (source, not measured)
    "QUANTIZE": 32,  # QuantizationParams (16) + 3 x int32 (source, not measured)
    "DEQUANTIZE": 32,  # idem
}
_OP_DATA_HOST_CMSIS = {
    **_OP_DATA_HOST,
    "CONV_2D": 84,
    "DEPTHWISE_CONV_2D": 84,
    "FULLY_CONNECTED": 120,
    "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36,
}
_OP_DATA_32 = {
    "CONV_2D": 60,
    "DEPTHWISE_CONV_2D": 60,
    "FULLY_CONNECTED": 32,
    "AVERAGE_POOL_2D": 32,
    "MAX_POOL_2D": 32,
    "MEAN": 44,
    "SOFTMAX": 48,
    "PAD": 56,
    "ADD": 60,
    "MUL": 36,
    "CONCATENATION": 48,  # 2 pointers fewer bytes than on the host (source, not measured)
    "HARD_SWISH": 20,
    "RELU": 28,
    "LOGISTIC": 16,
    "RELU6": 8,
    "QUANTIZE": 32,
    "DEQUANTIZE": 32,
}
_OP_DATA_32_CMSIS = {
    **_OP_DATA_32,
    "CONV_2D": 64,
    "DEPTHWISE_CONV_2D": 64,
    "FULLY_CONNECTED": 60,
    "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36,
}

# Zero-byte scratch requests: FULLY_CONNECTED requests decompression scratch buffers for
# weights (and bias) even when they are not compressed (TFLM compression support): 2 in the
# host package (seen as 16 unrecorded tail bytes per FULLY_CONNECTED), 1 in the Cortex-M4 build
# (fitted).
_HOST_EMPTY_SCRATCH = {"FULLY_CONNECTED": 2}
_M32_EMPTY_SCRATCH = {"FULLY_CONNECTED": 1}

# Struct sizes 64-/32-bit: TfLiteEvalTensor 24/12, NodeAndRegistration 64/32, TfLiteTensor
# 64/32, TfLiteAffineQuantization 24/12 (tensorflow/lite/core/c/common.h under
# TF_LITE_STATIC_MEMORY, micro/micro_common.h). Host values are the recording allocator's
# per-category report; 32-bit TfLiteTensor (32) is the value the Cortex-M4 arenas require.
# Bootstrap (allocator objects made before the model): host 456, fitted on 33 models, exact on
# all; 32-bit 136, fitted on the MLPerf Tiny arenas of the Cortex-M4 build: reference exact on
# 4 of 4, cmsis-nn exact on 3 of 4 (ResNet-8 predicted 16 B high).
_BUILDS: dict[tuple[str, str], _Build] = {
    ("host", "reference"): _Build(8, 456, 24, 64, 64, 24, _OP_DATA_HOST, _HOST_EMPTY_SCRATCH),
    ("host", "cmsis-nn"): _Build(8, 456, 24, 64, 64, 24, _OP_DATA_HOST_CMSIS, _HOST_EMPTY_SCRATCH),
    ("cortex-m", "reference"): _Build(4, 136, 12, 32, 32, 12, _OP_DATA_32, _M32_EMPTY_SCRATCH),
    ("cortex-m", "cmsis-nn"): _Build(4, 136, 12, 32, 32, 12, _OP_DATA_32_CMSIS, _M32_EMPTY_SCRATCH),
}


def _check(target: str, kernels: str) -> _Build:
    build = _BUILDS.get((target, kernels))
    if build is None:
        raise ValueError(
            f"arena target must be one of {TARGETS} and kernels one of {KERNELS}, got {target!r}, {kernels!r}"
        )
    return build


# ----------------------------------------------------------------------------- scratch buffers

_SCRATCH_KINDS = frozenset({"MEAN", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D"})

# Per op kind, in one lookup: (builtin params or None, has per-channel arrays, may request
# scratch); kinds with none of these are absent.
_KIND_ROLES: dict[str, tuple[tuple[int, int] | None, bool, bool]] = {
    kind: (_BUILTIN_PARAMS.get(kind), kind in _PER_CHANNEL_KINDS, kind in _SCRATCH_KINDS)
    for kind in set(_BUILTIN_PARAMS) | _PER_CHANNEL_KINDS | _SCRATCH_KINDS
}


def scratch_bytes(graph: Graph, op_index: int, kernels: str) -> list[int]:
    """Scratch buffers (bytes each) the kernel of op ``op_index`` requests in Prepare.

    Both libraries: int8 MEAN (reference reduce, kernels/reduce_common.cc) requests three:
    int32 sums per output element and two int32 arrays of the input rank (resolved axes and
    index temp) -- confirmed on the host interpreter. Other reference kernels request none for
    the int8 ops modelled here. CMSIS-NN (wrappers in kernels/cmsis_nn/) requests one for:
    convolutions ``arm_convolve_wrapper_s8_get_buffer_size`` (im2col: 2 * Cin * KH * KW int16
    on the DSP path, none for 1x1 kernels), depthwise
    ``arm_depthwise_conv_wrapper_s8_get_buffer_size`` (Cin * KH * KW int16, none when the 3x3
    fast path applies), average pool ``arm_avgpool_s8_get_buffer_size`` (C int32); fully
    connected needs none on the DSP path. Requests of 0 bytes are not made (buffer index -1).
    """
    op = graph.ops[op_index]
    kind = op.kind
    if kind not in _SCRATCH_KINDS:
        return []
    tensors = graph.tensors
    if kind == "MEAN":
        rank_bytes = 4 * len(tensors[op.inputs[0]].shape)
        return [4 * tensors[op.outputs[0]].num_elements, rank_bytes, rank_bytes]
    if kernels != "cmsis-nn":
        return []
    if kind == "AVERAGE_POOL_2D":
        return [tensors[op.outputs[0]].shape[-1] * 4]
    _, kh, kw, channels = tensors[op.inputs[1]].shape
    if kind == "CONV_2D":
        return [] if kh == 1 and kw == 1 else [2 * channels * kh * kw * 2]
    return [] if (kh, kw) == (3, 3) else [channels * kh * kw * 2]  # DEPTHWISE_CONV_2D


# ----------------------------------------------------------------------------- one pass


@dataclass(slots=True)
class _GraphFacts:
    """What the arena depends on, gathered in one pass over a graph (bytes unless noted).

    ``sizes``/``firsts``/``lasts``: the tensors' planner buffers in AddBuffer order;
    ``scratch``: per kernel library, the scratch buffers (16-aligned sizes, steps) in request
    order, planned after the tensors; ``builtin_bytes``: the builtin-parameter phase of the
    tail (all alignments <= 4, so independent of where it starts); ``kind_counts``: ops per
    kind, kinds in order of first appearance; ``channel_bytes``: per-channel quantization
    arrays, each 16-aligned.
    """

    sizes: list[int]
    firsts: list[int]
    lasts: list[int]
    scratch: dict[str, tuple[list[int], list[int]]]
    builtin_bytes: int
    kind_counts: dict[str, int]
    channel_bytes: int
    tensor_count: int


def shared_padding_key(graph: Graph, op_index: int) -> tuple[int, ...] | None:
    """For a PAD op with constant paddings: the padding it adds per dimension, else None.

    The TFLite converter stores equal constant tensors once, so PAD ops that add the same
    padding (same output-minus-input shape; the split follows one convention per model) share
    one paddings tensor in the file, while a graph may give each PAD its own. Estimators count
    one tensor per distinct key.
    """
    op = graph.ops[op_index]
    if op.kind != "PAD" or len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_constant:
        return None
    tensors = graph.tensors
    return tuple(o - i for o, i in zip(tensors[op.outputs[0]].shape, tensors[op.inputs[0]].shape))


def duplicate_constant_indices(graph: Graph) -> set[int]:
    """Constant tensors the converter would not store: all but one per :func:`shared_padding_key`."""
    kept: dict[tuple[int, ...], int] = {}
    duplicates: set[int] = set()
    for index, op in enumerate(graph.ops):
        if op.kind == "PAD":
            key = shared_padding_key(graph, index)
            if key is not None:
                paddings = op.inputs[1]
                if kept.setdefault(key, paddings) != paddings:
                    duplicates.add(paddings)
    return duplicates


def _graph_facts(graph: Graph) -> _GraphFacts:
    tensors = graph.tensors
    first = [-1] * len(tensors)
    last = [-1] * len(tensors)
    for index in graph.inputs:
        first[index] = last[index] = 0
    reference_sizes: list[int] = []
    reference_steps: list[int] = []
    cmsis_sizes: list[int] = []
    cmsis_steps: list[int] = []
    kind_counts: dict[str, int] = {}
    builtin = 0
    channel_bytes = 0
    step = 0
    for op in graph.ops:
        step += 1
        kind = op.kind
        kind_counts[kind] = kind_counts.get(kind, 0) + 1
        for index in op.outputs:
            if first[index] < 0:
                first[index] = step
            last[index] = step
        for index in op.inputs:
            if index >= 0:
                last[index] = step
        role = _KIND_ROLES.get(kind)
        if role is None:
            continue
        params, per_channel, requests_scratch = role
        if params is not None:
            builtin = (builtin + params[0] + params[1] - 1) & -params[1]
        if per_channel and (kind != "FULLY_CONNECTED" or tensors[op.inputs[1]].quant_channels > 1):
            channel_bytes += 2 * ((4 * tensors[op.outputs[0]].shape[-1] + 15) & -16)
        if requests_scratch:
            for nbytes in scratch_bytes(graph, step - 1, "cmsis-nn"):
                cmsis_sizes.append((nbytes + 15) & -16)
                cmsis_steps.append(step)
                if kind == "MEAN":  # the one kind that requests the same with both libraries
                    reference_sizes.append(cmsis_sizes[-1])
                    reference_steps.append(step)
    for index in graph.outputs:
        if first[index] < 0:
            first[index] = 0
        last[index] = step

    # Planner buffers: tensors by index (no constant data, non-empty), then scratch buffers.
    # Time: inputs are created at step 0, op i runs at step i + 1 and creates its outputs there;
    # outputs live to the last step (micro_allocation_info.cc of the measured build).
    sizes: list[int] = []
    firsts: list[int] = []
    lasts: list[int] = []
    for index, tensor in enumerate(tensors):
        if not tensor.is_constant:
            nbytes = prod(tensor.shape) * DTYPE_BYTES[tensor.dtype]
            if nbytes:
                sizes.append((nbytes + 15) & -16)
                firsts.append(first[index])
                lasts.append(last[index])
    scratch = {"reference": (reference_sizes, reference_steps), "cmsis-nn": (cmsis_sizes, cmsis_steps)}
    tensor_count = len(tensors) - (len(duplicate_constant_indices(graph)) if "PAD" in kind_counts else 0)
    return _GraphFacts(sizes, firsts, lasts, scratch, builtin, kind_counts, channel_bytes, tensor_count)


# ----------------------------------------------------------------------------- head (planner)


def greedy_plan_bytes(sizes: list[int], firsts: list[int], lasts: list[int]) -> int:
    """Arena bytes of TFLM's ``GreedyMemoryPlanner`` for buffers given in AddBuffer order.

    Order: buffers sorted by size, largest first; ties keep the *reverse* of the order they were
    added (the planner fills its sort array from the tail, then bubble-sorts, which is stable).
    Each buffer goes at the lowest offset, scanning the already-placed buffers that overlap it in
    time in order of offset, where the gap before the next one is
    large enough (first fit). Cost: O(n * k log k) for k buffers alive at the same time, via
    per-step lists kept sorted by offset.
    """
    count = len(sizes)
    if count == 0:
        return 0
    order = sorted(range(count - 1, -1, -1), key=sizes.__getitem__, reverse=True)
    # sorted(reverse=True) keeps equal keys in their given (here: reversed) order, as needed.
    # Per step, the placed buffers alive then as (offset, end), sorted. Among equal offsets the
    # scan's result does not depend on their order, nor on duplicates (a buffer alive at
    # several steps), so plain sorted pairs suffice.
    live: list[list[tuple[int, int]]] = [[] for _ in range(max(lasts) + 1)]
    high = 0
    for buffer in order:
        size = sizes[buffer]
        start = firsts[buffer]
        stop = lasts[buffer]
        if start == stop:
            others = live[start]
        elif stop == start + 1:
            others = live[start] + live[stop]
            others.sort()
        else:
            others = [entry for step in range(start, stop + 1) for entry in live[step]]
            others.sort()
        candidate = 0
        for offset, end in others:
            if offset - candidate >= size:
                break
            if end > candidate:
                candidate = end
        end = candidate + size
        entry = (candidate, end)
        for step in range(start, stop + 1):
            insort(live[step], entry)
        if end > high:
            high = end
    return high


def _head(facts: _GraphFacts, kernels: str) -> int:
    scratch_sizes, scratch_steps = facts.scratch[kernels]
    if not scratch_sizes:
        return greedy_plan_bytes(facts.sizes, facts.firsts, facts.lasts)
    return greedy_plan_bytes(
        facts.sizes + scratch_sizes, facts.firsts + scratch_steps, facts.lasts + scratch_steps
    )


def plan_bytes(graph: Graph, kernels: str = "reference") -> int:
    """Head of the arena: the greedy memory plan of activations and scratch buffers (bytes).

    The same on 32- and 64-bit targets.
    """
    _check("host", kernels)
    return _head(_graph_facts(graph), kernels)


# ----------------------------------------------------------------------------- tail (persistent)


def _tail(graph: Graph, build: _Build, facts: _GraphFacts, kernels: str) -> int:
    """Replay TFLM's persistent allocations in order; returns the tail bytes used.

    Each allocation moves the tail down by its size, then down to its alignment
    (``SingleArenaBufferAllocator::AllocatePersistentBuffer``); the arena end is 16-aligned.
    Alignments are powers of two, so ``(x + a - 1) & -a`` rounds up. Runs of 16-aligned
    allocations of 16-multiple sizes are summed.
    """
    pointer = build.pointer
    ptr_mask = -pointer
    tensors = graph.tensors
    used = build.bootstrap
    # MicroAllocator::StartModelAllocation: MicroBuiltinDataAllocator (vtable + pointer),
    # SubgraphAllocations (2 pointers), TfLiteEvalTensor[] (one per tensor of the file),
    # NodeAndRegistration[].
    used = (used + 2 * pointer + pointer - 1) & ptr_mask
    used = (used + 2 * pointer + pointer - 1) & ptr_mask
    used = (used + build.eval_tensor * facts.tensor_count + pointer - 1) & ptr_mask
    used = (used + build.node_and_registration * len(graph.ops) + pointer - 1) & ptr_mask
    # MicroInterpreter::PrepareNodeAndRegistrationDataFromFlatbuffer: builtin params per op
    # (``used`` is a multiple of 4 here, so the phase length does not depend on it).
    used += facts.builtin_bytes
    # Kernel Init: OpData (16-aligned); Prepare: per-channel multiplier and shift arrays
    # (16-aligned); scratch requests, each costing a handle later.
    # The first of these 16-aligned allocations rounds ``used + size`` up; after it ``used`` is
    # a multiple of 16 and each allocation adds its size rounded up to 16.
    op_data = build.op_data
    first_size = 0
    aligned = facts.channel_bytes
    handles = len(facts.scratch[kernels][0])
    for kind, count in facts.kind_counts.items():  # kinds in order of first appearance
        size = op_data.get(kind, 0)
        if size and not first_size:
            first_size = size
        aligned += count * ((size + 15) & -16)
        handles += count * build.empty_scratch.get(kind, 0)
    if first_size:
        used = ((used + first_size + 15) & -16) + aligned - ((first_size + 15) & -16)
    # FinishModelAllocation: ScratchBufferHandle {uint8_t* data} per request.
    if handles:
        used = (used + pointer * handles + pointer - 1) & ptr_mask
    # MicroInterpreter::AllocateTensors: TfLiteTensor* array (16-aligned), then per tensor the
    # TfLiteTensor, its TfLiteAffineQuantization and zero-point TfLiteIntArray {size, data[]}.
    for indices in (graph.inputs, graph.outputs):
        used = (used + pointer * len(indices) + 15) & -16
        for index in indices:
            used = (used + build.tflite_tensor + pointer - 1) & ptr_mask
            channels = tensors[index].quant_channels
            if channels:
                used = (used + build.affine_quantization + pointer - 1) & ptr_mask
                used = (used + 4 + 4 * channels + 3) & -4
    return used


def tail_bytes(graph: Graph, target: str = "cortex-m", kernels: str = "reference") -> int:
    """Persistent (tail) bytes of the arena on ``target`` with ``kernels`` (see module doc)."""
    return _tail(graph, _check(target, kernels), _graph_facts(graph), kernels)


def arena_bytes(graph: Graph, target: str = "cortex-m", kernels: str = "reference") -> int:
    """Predicted ``arena_used_bytes()`` of TFLite Micro for ``graph`` (bytes): head + tail.

    Args:
        graph: the int8 model as deployed (ops in execution order).
        target: ``"cortex-m"`` (32-bit microcontroller) or ``"host"`` (64-bit tflite-micro
            Python interpreter).
        kernels: ``"reference"`` or ``"cmsis-nn"``.
    """
    build = _check(target, kernels)
    facts = _graph_facts(graph)
    return _head(facts, kernels) + _tail(graph, build, facts, kernels)


def arena_bytes_pair(graph: Graph, kernels: str = "cmsis-nn") -> tuple[int, int]:
    """The two arenas of an estimate from one pass over ``graph`` (bytes):

    ``(arena_bytes(graph, "cortex-m", kernels), arena_bytes(graph, "host", "reference"))`` --
    the microcontroller's arena and the one :mod:`mcunas.tflm` measures. The plan is made once
    when both kernel libraries request the same scratch buffers.
    """
    facts = _graph_facts(graph)
    head = _head(facts, kernels)
    if kernels != "reference" and facts.scratch[kernels][0] != facts.scratch["reference"][0]:
        head_reference = _head(facts, "reference")
    else:
        head_reference = head
    return (
        head + _tail(graph, _check("cortex-m", kernels), facts, kernels),
        head_reference + _tail(graph, _check("host", "reference"), facts, "reference"),
    )
