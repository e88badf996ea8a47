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

What each op kind's kernel allocates (builtin parameters, OpData, Prepare-time persistent
buffers, scratch requests, with the reference and the CMSIS-NN kernels) is tabulated in
:mod:`mcunas.estimators.tflm_kernels`; this module holds the algorithm (plan + allocation
replay) and the per-build struct sizes.

Provenance: struct layouts from the TFLM sources named in the tables. Host values are confirmed
against the recording allocator of the ``tflite-micro`` package (build 0.dev20261023): the
prediction equals the measured arena on every generated model of ``tests/model_zoo.py`` (all op
kinds, int8/int16, float I/O) but one (16 B low), on the 4 MLPerf Tiny models, person_detect
and the exports of ``mcunas.export``. The 32-bit build is known through 40 measured totals
(4 MLPerf Tiny + 16 space models, 2 kernel libraries each, ``*-instruction-counts.json``):
bootstrap bytes, TfLiteTensor size, SOFTMAX OpData, the empty FULLY_CONNECTED scratch request
and three differences of that (older) build -- MEAN's scratch requests, TfLiteAddParams, a
per-channel FULLY_CONNECTED's arrays -- are fitted to them; 36 of the 40 are then exact and all
within 16 bytes (in-sample: no 32-bit measurement is held out).
Assumptions: one subgraph, no offline-planned buffers, no variable tensors.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from math import prod

from mcunas.estimators.runtime import KERNEL_LIBRARIES
from mcunas.estimators.tflm_kernels import (
    BUILTIN_PARAMS,
    CORTEX_M_BUILTIN_PARAMS,
    CORTEX_M_MEAN_SCRATCH_REQUESTS,
    CORTEX_M_PER_CHANNEL_FC_DELTA_BYTES,
    EMPTY_SCRATCH_REQUESTS,
    OP_DATA,
    PER_CHANNEL_KINDS,
    SCRATCH_KINDS,
    persistent_buffers,
    scratch_requests,
)
from mcunas.graph.ir import DTYPE_BYTES, Graph

TARGETS = ("cortex-m", "host")
KERNELS = KERNEL_LIBRARIES


@dataclass(frozen=True, slots=True)
class _Build:
    """Struct sizes (bytes) and kernel tables of one TFLM build; provenance in the module
    docstring and in :mod:`mcunas.estimators.tflm_kernels`."""

    pointer: int
    # Allocator objects created before the model (SingleArenaBufferAllocator, GreedyMemoryPlanner,
    # MicroAllocator; the recording variants on the host): calibrated, see _BUILDS.
    bootstrap: int
    eval_tensor: int  # TfLiteEvalTensor {data ptr, dims ptr, TfLiteType}
    node_and_registration: int  # NodeAndRegistration {TfLiteNode (6 ptrs + int), registration ptr}
    tflite_tensor: int  # TfLiteTensor under TF_LITE_STATIC_MEMORY
    affine_quantization: int  # TfLiteAffineQuantization {scale ptr, zero_point ptr, int32}
    # Kernel OpData structs allocated in Init (16-byte aligned), by op kind.
    op_data: dict[str, int]
    # Zero-byte scratch-buffer requests per op kind: they cost a handle each, no arena head.
    empty_scratch: dict[str, int]


# Struct sizes 64-/32-bit: TfLiteEvalTensor 24/12, NodeAndRegistration 64/32, TfLiteTensor
# 64/32, TfLiteAffineQuantization 24/12 (tensorflow/lite/core/c/common.h under
# TF_LITE_STATIC_MEMORY, micro/micro_common.h). Host values are the recording allocator's
# per-category report; 32-bit TfLiteTensor (32) is the value the 32-bit arenas require (it keeps
# their size = 4 mod 16; the layout of common.h would give 40).
# Bootstrap (allocator objects made before the model): host 456, fitted on 33 models, exact on
# all since; 32-bit 136, fitted on the 40 measured arenas of the Cortex-M4 build.
_BUILDS: dict[tuple[str, str], _Build] = {
    (target, kernels): _Build(
        *((8, 456, 24, 64, 64, 24) if target == "host" else (4, 136, 12, 32, 32, 12)),
        OP_DATA[(target, kernels)],
        EMPTY_SCRATCH_REQUESTS[target],
    )
    for target in TARGETS
    for kernels in KERNELS
}


def _check(target: str, kernels: str) -> _Build:
    build = _BUILDS.get((target, kernels))
    if build is None:
        raise ValueError(
            f"arena target must be one of {TARGETS} and kernels one of {KERNELS}, got {target!r}, {kernels!r}"
        )
    return build


# ----------------------------------------------------------------------------- scratch buffers

# Per op kind, in one lookup: (host builtin params, 32-bit builtin params, may allocate in
# Prepare, may request scratch); kinds with none of these are absent.
_KIND_ROLES: dict[str, tuple[tuple[int, int] | None, tuple[int, int] | None, bool, bool]] = {
    kind: (
        BUILTIN_PARAMS.get(kind),
        CORTEX_M_BUILTIN_PARAMS.get(kind),
        kind in PER_CHANNEL_KINDS or kind == "SOFTMAX",
        kind in SCRATCH_KINDS,
    )
    for kind in set(BUILTIN_PARAMS) | PER_CHANNEL_KINDS | SCRATCH_KINDS | {"SOFTMAX"}
}
_MEAN_KINDS = ("MEAN", "SUM")
_CMSIS_ONLY_SCRATCH = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D")
_CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def scratch_bytes(graph: Graph, op_index: int, kernels: str, target: str = "host") -> list[int]:
    """Scratch buffers (bytes each, 0 for a request of no bytes) the kernel of op ``op_index``
    requests in Prepare on ``target`` (see :func:`mcunas.estimators.tflm_kernels.scratch_requests`)."""
    _check(target, kernels)
    mean_requests = 3 if target == "host" else CORTEX_M_MEAN_SCRATCH_REQUESTS
    return scratch_requests(graph, graph.ops[op_index], kernels, mean_requests)


# ----------------------------------------------------------------------------- one pass


@dataclass(slots=True)
class PlanFacts:
    """What the head of the arena (the plan) depends on, from one pass over a graph (bytes).

    ``sizes``/``firsts``/``lasts``: the tensors' planner buffers in AddBuffer order, 16-aligned,
    with the steps of their first and last use; ``requests``: the scratch requests by who makes
    them -- ``("both", target)`` with either kernel library, ``("only", kernels)`` with one
    library on both targets -- each as (step, bytes) in request order (0 bytes: a handle, no
    buffer).
    """

    sizes: list[int]
    firsts: list[int]
    lasts: list[int]
    requests: dict[tuple[str, str], list[tuple[int, int]]]
    _scratch: dict[tuple[str, str], tuple[list[int], list[int], int]] = field(default_factory=dict)

    def scratch(self, target: str, kernels: str) -> tuple[list[int], list[int], int]:
        """Scratch requests of one build: (16-aligned sizes, steps) of those with bytes, in
        request order, and the number of requests (each costs a handle)."""
        key = (target, kernels)
        cached = self._scratch.get(key)
        if cached is None:
            made = self.requests[("both", target)]
            only = self.requests[("only", kernels)]
            if only:
                made = sorted(made + only, key=lambda request: request[0])  # stable: order within an op kept
            sizes = [(nbytes + 15) & -16 for _, nbytes in made if nbytes]
            steps = [step for step, nbytes in made if nbytes]
            cached = self._scratch[key] = (sizes, steps, len(made))
        return cached


@dataclass(slots=True)
class TailFacts:
    """What the tail of the arena (the persistent part) depends on (bytes unless noted).

    ``builtin_bytes``: per target, the builtin-parameter phase of the tail (alignments divide
    :data:`BUILTIN_ALIGNMENT`, so it adds the same from any start that is a multiple of it);
    ``kind_counts``: ops per kind, kinds in order of first appearance; ``prepare_bytes``: per
    target, the Prepare-time persistent buffers (per-channel arrays, lookup tables), each
    16-aligned; ``tensor_count``: tensors of the file (equal padding constants once);
    ``request_counts``: the number of scratch requests, keyed like ``PlanFacts.requests``;
    ``io_channels``: the quantization channels of the graph inputs and of the outputs.
    """

    builtin_bytes: dict[str, int]
    kind_counts: dict[str, int]
    prepare_bytes: dict[str, int]
    tensor_count: int
    op_count: int
    request_counts: dict[tuple[str, str], int]
    io_channels: tuple[tuple[int, ...], tuple[int, ...]]

    def handles(self, target: str, kernels: str) -> int:
        """Scratch requests of one build (each costs a handle)."""
        return self.request_counts[("both", target)] + self.request_counts[("only", kernels)]


# Who makes a scratch request, the keys of PlanFacts.requests and TailFacts.request_counts.
REQUEST_KEYS: tuple[tuple[str, str], ...] = (("both", "host"), ("both", "cortex-m"), *(("only", kernels) for kernels in KERNELS))
# The largest builtin-parameter alignment (bytes); the others, powers of two too, divide it.
BUILTIN_ALIGNMENT = max(align for table in (BUILTIN_PARAMS, CORTEX_M_BUILTIN_PARAMS) for _, align in table.values())


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


def arena_facts(graph: Graph) -> tuple[PlanFacts, TailFacts]:
    """The facts of the arena's head and tail, from one pass over ``graph``."""
    tensors = graph.tensors
    first = [-1] * len(tensors)
    last = [-1] * len(tensors)
    for index in graph.inputs:
        first[index] = last[index] = 0
    both_host: list[tuple[int, int]] = []
    both_m32: list[tuple[int, int]] = []
    only = {kernels: [] for kernels in KERNELS}
    kind_counts: dict[str, int] = {}
    builtin_host = builtin_m32 = 0
    prepare_host = prepare_m32 = 0
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
        params_host, params_m32, allocates, requests_scratch = role
        if params_host is not None:
            builtin_host = (builtin_host + params_host[0] + params_host[1] - 1) & -params_host[1]
            builtin_m32 = (builtin_m32 + params_m32[0] + params_m32[1] - 1) & -params_m32[1]
        if allocates:
            if kind in _CONVOLUTIONS:  # the common case, inlined: multiplier and shift per channel
                aligned = 2 * ((4 * tensors[op.outputs[0]].shape[-1] + 15) & -16)
                prepare_host += aligned
                prepare_m32 += aligned
            else:
                for nbytes in persistent_buffers(graph, op):
                    prepare_host += (nbytes + 15) & -16
                for nbytes in persistent_buffers(graph, op, CORTEX_M_PER_CHANNEL_FC_DELTA_BYTES):
                    prepare_m32 += (nbytes + 15) & -16
        if requests_scratch:
            if kind in _CMSIS_ONLY_SCRATCH:
                made = scratch_requests(graph, op, "cmsis-nn")
                if made:
                    only["cmsis-nn"].extend([(step, nbytes) for nbytes in made])
            elif kind in _MEAN_KINDS:  # reference kernels with both libraries; fewer on 32-bit
                made = scratch_requests(graph, op, "reference")
                both_host.extend((step, nbytes) for nbytes in made)
                both_m32.extend((step, nbytes) for nbytes in made[:CORTEX_M_MEAN_SCRATCH_REQUESTS])
            else:
                for library in KERNELS:
                    only[library].extend((step, nbytes) for nbytes in scratch_requests(graph, op, library))
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
    requests = dict(zip(REQUEST_KEYS, (both_host, both_m32, *(only[kernels] for kernels in KERNELS))))
    tensor_count = len(tensors) - (len(duplicate_constant_indices(graph)) if "PAD" in kind_counts else 0)
    tail = TailFacts(
        {"host": builtin_host, "cortex-m": builtin_m32},
        kind_counts,
        {"host": prepare_host, "cortex-m": prepare_m32},
        tensor_count,
        len(graph.ops),
        {key: len(made) for key, made in requests.items()},
        (tuple(tensors[i].quant_channels for i in graph.inputs), tuple(tensors[i].quant_channels for i in graph.outputs)),
    )
    return PlanFacts(sizes, firsts, lasts, requests), tail


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


def head_of_facts(facts: PlanFacts, target: str, kernels: str) -> int:
    """Head bytes of one build: the greedy plan of the tensors' buffers followed (AddBuffer
    order) by that build's scratch buffers, each live at the step of the op requesting it."""
    scratch_sizes, scratch_steps, _ = facts.scratch(target, kernels)
    if not scratch_sizes:
        return greedy_plan_bytes(facts.sizes, facts.firsts, facts.lasts)
    return greedy_plan_bytes(
        facts.sizes + scratch_sizes, facts.firsts + scratch_steps, facts.lasts + scratch_steps
    )


def plan_bytes(graph: Graph, kernels: str = "reference", target: str = "host") -> int:
    """Head of the arena: the greedy memory plan of activations and scratch buffers (bytes).

    The same on 32- and 64-bit targets up to the scratch buffers their kernels request.
    """
    _check(target, kernels)
    return head_of_facts(arena_facts(graph)[0], target, kernels)


# ----------------------------------------------------------------------------- tail (persistent)


def tail_of_facts(facts: TailFacts, target: str, kernels: str) -> int:
    """Replay TFLM's persistent allocations in order; returns the tail bytes used (of the
    build ``target`` with ``kernels``).

    Each allocation moves the tail down by its size, then down to its alignment
    (``SingleArenaBufferAllocator::AllocatePersistentBuffer``); the arena end is 16-aligned.
    Alignments are powers of two, so ``(x + a - 1) & -a`` rounds up. Runs of 16-aligned
    allocations of 16-multiple sizes are summed.
    """
    build = _BUILDS[(target, kernels)]
    pointer = build.pointer
    ptr_mask = -pointer
    used = build.bootstrap
    # MicroAllocator::StartModelAllocation: MicroBuiltinDataAllocator (vtable + pointer),
    # SubgraphAllocations (2 pointers), TfLiteEvalTensor[] (one per tensor of the file),
    # NodeAndRegistration[].
    used = (used + 2 * pointer + pointer - 1) & ptr_mask
    used = (used + 2 * pointer + pointer - 1) & ptr_mask
    used = (used + build.eval_tensor * facts.tensor_count + pointer - 1) & ptr_mask
    used = (used + build.node_and_registration * facts.op_count + pointer - 1) & ptr_mask
    # MicroInterpreter::PrepareNodeAndRegistrationDataFromFlatbuffer: builtin params per op
    # (``used`` is a multiple of 4 here, so the phase length does not depend on it).
    used += facts.builtin_bytes[target]
    # Kernel Init: OpData (16-aligned); Prepare: per-channel multiplier and shift arrays and
    # lookup tables (16-aligned); scratch requests, each costing a handle later.
    # The first of these 16-aligned allocations rounds ``used + size`` up; after it ``used`` is
    # a multiple of 16 and each allocation adds its size rounded up to 16.
    op_data = build.op_data
    empty_scratch = build.empty_scratch
    first_size = 0
    aligned = facts.prepare_bytes[target]
    handles = facts.handles(target, kernels)
    for kind, count in facts.kind_counts.items():  # kinds in order of first appearance
        size = op_data.get(kind, 0)
        if size and not first_size:
            first_size = size
        aligned += count * ((size + 15) & -16)
        handles += count * empty_scratch.get(kind, 0)
    if first_size:
        used = ((used + first_size + 15) & -16) + aligned - ((first_size + 15) & -16)
    else:
        used = ((used + 15) & -16) + aligned if aligned else used
    # FinishModelAllocation: ScratchBufferHandle {uint8_t* data} per request.
    if handles:
        used = (used + pointer * handles + pointer - 1) & ptr_mask
    # MicroInterpreter::AllocateTensors: TfLiteTensor* array (16-aligned), then per tensor the
    # TfLiteTensor, its TfLiteAffineQuantization and zero-point TfLiteIntArray {size, data[]}.
    for io_channels in facts.io_channels:
        used = (used + pointer * len(io_channels) + 15) & -16
        for channels in io_channels:
            used = (used + build.tflite_tensor + pointer - 1) & ptr_mask
            if channels:
                used = (used + build.affine_quantization + pointer - 1) & ptr_mask
                used = (used + 4 + 4 * channels + 3) & -4
    return used


def tail_bytes(graph: Graph, target: str = "cortex-m", kernels: str = "reference") -> int:
    """Persistent (tail) bytes of the arena on ``target`` with ``kernels`` (see module doc)."""
    _check(target, kernels)
    return tail_of_facts(arena_facts(graph)[1], target, kernels)


def arena_bytes(graph: Graph, target: str = "cortex-m", kernels: str = "reference") -> int:
    """Predicted ``arena_used_bytes()`` of TFLite Micro for ``graph`` (bytes): head + tail.

    Args:
        graph: the int8 model as deployed (ops in execution order).
        target: ``"cortex-m"`` (32-bit microcontroller) or ``"host"`` (64-bit tflite-micro
            Python interpreter).
        kernels: ``"reference"`` or ``"cmsis-nn"``.
    """
    _check(target, kernels)
    plan, tail = arena_facts(graph)
    return head_of_facts(plan, target, kernels) + tail_of_facts(tail, target, kernels)


def arena_bytes_pair(graph: Graph, kernels: str = "cmsis-nn") -> tuple[int, int]:
    """The two arenas of an estimate from one pass over ``graph`` (bytes):

    ``(arena_bytes(graph, "cortex-m", kernels), arena_bytes(graph, "host", "reference"))`` --
    the microcontroller's arena and the one :mod:`mcunas.tflm` measures. The plan is made once
    when both builds request the same scratch buffers.
    """
    _check("cortex-m", kernels)
    plan, tail = arena_facts(graph)
    head = head_of_facts(plan, "cortex-m", kernels)
    if plan.scratch("cortex-m", kernels)[:2] != plan.scratch("host", "reference")[:2]:
        head_reference = head_of_facts(plan, "host", "reference")
    else:
        head_reference = head
    return (
        head + tail_of_facts(tail, "cortex-m", kernels),
        head_reference + tail_of_facts(tail, "host", "reference"),
    )


def live_bytes_per_op(graph: Graph, target: str = "cortex-m", kernels: str = "cmsis-nn") -> list[int]:
    """Per op (execution order), the arena head bytes live while it runs: the 16-aligned planner
    buffers (tensors and scratch buffers) whose lifetime includes the op's step.

    A lower bound of the plan (:func:`plan_bytes`), which may be larger where buffers cannot be
    packed without gaps; the op with the largest value is where memory peaks.
    """
    _check(target, kernels)
    facts = arena_facts(graph)[0]
    scratch_sizes, scratch_steps, _ = facts.scratch(target, kernels)
    # difference array over steps 0..len(ops): +size at first, -size after last
    delta = [0] * (len(graph.ops) + 2)
    for size, first, last in zip(facts.sizes, facts.firsts, facts.lasts):
        delta[first] += size
        delta[last + 1] -= size
    for size, step in zip(scratch_sizes, scratch_steps):
        delta[step] += size
        delta[step + 1] -= size
    live = []
    running = delta[0]
    for step in range(1, len(graph.ops) + 1):
        running += delta[step]
        live.append(running)
    return live
