"""Fast estimates of search-space architectures: ``estimate_arch(space, arch, board)``.

It returns the :class:`~mcunas.estimators.cost.Cost` that ``estimate(space.graph(arch), board)``
returns, equal in every field (``tests/test_fast_estimate.py`` compares them on thousands of
architectures of every space), several times faster (``benchmarks/estimate_throughput.py``):
the search trials cost every candidate through it.

How: a space's graph is a chain of *parts* -- the stem layer, each block, the head (pool and
classifier) -- and each part's ops depend only on its layers and its input shape. The first time
a part is seen, its graph is built with the functions that build whole graphs
(:func:`mcunas.spaces.graph_builder.emit_block`, ``emit_head``, ``LAYER_EMITTERS``) and the
reference estimators read it: the arena facts (:func:`mcunas.estimators.memory.arena_facts`),
the flash model's terms (:func:`mcunas.estimators.flash.tensor_terms`, ``op_terms``), the
latency signatures (:func:`mcunas.estimators.kernels.op_signature`) and, per profile and board,
their cycles (:meth:`Profile.signature_costs`). The facts go into tables (numpy arrays, a row
per part). An architecture's estimate combines its parts' rows with the reference code:

* arena: the parts' planner buffers are stitched (a part's input buffer is the previous part's
  output, living until its last use there) and planned by the compiled planner
  (:mod:`mcunas.estimators.fast_chain`); that plan on the 32-bit target is also
  ``activation_bytes``; the tail is :func:`memory.tail_of_facts` of the parts' summed
  :class:`memory.TailFacts` (padding constants shared across parts counted once);
* flash: :func:`flash.bytes_of_terms` of the parts' summed :class:`flash.ModelTerms` (the
  duplicate padding constants taken out); the runtime code as for any graph;
* latency: :meth:`Profile.latency_of` of the parts' op cycles, added in execution order;
* the Cost itself, budgets included, is made by :func:`mcunas.estimators.cost.cost_of`, the
  function ``estimate()`` uses.

So no part of the cost model is written twice; the compiled loops only add, stitch and plan
(the planner is tested against the reference's). A part whose facts cannot be added (builtin
parameters that leave the tail unaligned, a part graph whose input is not its first planner
buffer) sends its architecture through the reference path; :func:`cache_info`
counts such fallbacks. Layer kinds need nothing here: a part is built by the graph builder,
whatever its layers, and read by the estimators.

Caches are per process, shared by all spaces, boards and runtimes, bounded (cleared when
:data:`MAX_PARTS` parts are held) and safe to use from several threads. Importing this module
imports numpy and numba; the compiled loops are built once and then loaded from numba's cache.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mcunas.estimators import fast_chain, flash, memory
from mcunas.estimators.board import Board
from mcunas.estimators.cost import Cost, CostFigures, GraphFigures, cost_of
from mcunas.estimators.kernels import op_signature
from mcunas.estimators.latency import LatencyEstimate, Profile
from mcunas.estimators.runtime import DEFAULT_RUNTIME
from mcunas.graph.ir import Graph
from mcunas.spaces.graph_builder import LAYER_EMITTERS, GraphBuilder, emit_block, emit_head
from mcunas.spaces.spec import NetSpec

if TYPE_CHECKING:
    from mcunas.spaces import Space

logger = logging.getLogger(__name__)

# Parts held before the caches are cleared (a search space has a few thousand distinct parts).
MAX_PARTS = 100_000
# The builds whose scratch buffers a part records: (target, kernel library).
_BUILDS: tuple[tuple[str, str], ...] = tuple((target, kernels) for target in memory.TARGETS for kernels in memory.KERNELS)
# Column of the parts table where each build's scratch buffers start (their count follows).
_SCRATCH_COLUMNS = {build: fast_chain.PART_COLUMNS + 2 * index for index, build in enumerate(_BUILDS)}
# The per-part integers that add up over a chain, one column each in the counts table:
# macs, params, param bytes, ops, the flash model's exact bytes (flash.tensor_terms of its
# tensors, the input counted by the part that makes it, and flash.op_terms of its ops) and
# constant tensors, memory.TailFacts' builtin and prepare bytes per target and request counts
# (memory.REQUEST_KEYS).
_MACS, _PARAMS, _PARAM_BYTES, _OPS, _EXACT, _CONSTANTS, _BUILTIN_HOST, _BUILTIN_M32, _PREPARE_HOST, _PREPARE_M32 = range(10)
_REQUESTS = slice(10, 10 + len(memory.REQUEST_KEYS))
_COUNT_COLUMNS = _REQUESTS.stop


@dataclass(frozen=True, slots=True, eq=False)
class _Part:
    """The reference estimators' facts of one part that stay in Python (the rest is its row of
    the tables).

    Attributes:
        row: its row in the tables.
        output_shape: shape of its output tensor (the next part's input).
        composable: whether its facts add up with other parts' (see the module docstring).
        op_kinds: the kind of each op.
        io_channels: quantization channels of its graph's input and of its output.
        signatures: :func:`op_signature` of each op.
        successors: the parts that follow it, by the id of their block, with that block (kept
            alive, so that its id is not reused) -- the walk :meth:`_PartCache.chain` takes;
            and its head parts by number of classes (key ``("head", classes)``).
    """

    row: int
    output_shape: tuple[int, ...]
    composable: bool
    op_kinds: tuple[str, ...]
    io_channels: tuple[tuple[int, ...], tuple[int, ...]]
    signatures: tuple[tuple, ...]
    successors: dict[Any, tuple[Any, _Part]] = field(default_factory=dict)


class _Rows:
    """A growable table of ``width`` columns. Appended rows wait in a list until
    :meth:`flush` writes them in one go (a new part appends to several tables, an estimate then
    reads them once); :attr:`array` is the written part, a view that stays valid (and
    unchanged) after later writes."""

    def __init__(self, width: int, dtype: type = np.int64) -> None:
        self._data = np.zeros((256, width), dtype)
        self.array = self._data[:0]
        self._pending: list = []  # the rows appended since the last flush, one after the other

    def extend(self, rows: list) -> int:
        """Append ``rows`` (sequences of ``width`` numbers); returns the index of the first."""
        width = self._data.shape[1]
        start = self.array.shape[0] + len(self._pending) // width
        self._pending.extend(chain.from_iterable(rows))
        return start

    def flush(self) -> None:
        """Write the appended rows to :attr:`array`."""
        if self._pending:
            width = self._data.shape[1]
            start = self.array.shape[0]
            end = start + len(self._pending) // width
            if end > self._data.shape[0]:
                grown = np.zeros((max(2 * self._data.shape[0], end), width), self._data.dtype)
                grown[:start] = self._data[:start]
                self._data = grown
            self._data[start:end] = np.array(self._pending, self._data.dtype).reshape(-1, width)
            self._pending = []
            self.array = self._data[:end]


class _Tables:
    """The parts' facts as arrays, a row per part: what the compiled loops read."""

    def __init__(self) -> None:
        self.parts = _Rows(fast_chain.PART_COLUMNS + 2 * len(_BUILDS))  # + per build: scratch start, count
        self.counts = _Rows(_COUNT_COLUMNS)
        self.buffers = _Rows(3)  # planner buffers: bytes, first step, last step
        self.scratch = {build: _Rows(2) for build in _BUILDS}  # bytes, step
        self.kind_counts = _Rows(2)  # op kind id, ops of that kind: kinds in order of first appearance
        self.pads = _Rows(3)  # padding key id, the paddings tensor's flash.tensor_terms
        self.keys: dict[tuple[int, ...], int] = {}  # padding key -> id
        self.kinds: dict[str, int] = {}  # op kind -> id
        self.kind_names: list[str] = []
        self._added = False  # parts entered since the last flush
        self.cycles: dict[tuple[int, int], _Cycles] = {}  # by (id(profile), id(board))

    def add(self, graph: Graph, plan: memory.PlanFacts, kind_counts: dict[str, int], counts: list[int],
            output_buffer: int, pads: list) -> int:
        """Enter a part: its graph's planner buffers (``output_buffer``: the position of its
        output among them), ops, ops per kind (in order of first appearance), tensors, PAD
        entries (padding key, the paddings tensor's terms), counts and every build's scratch
        buffers; returns its row."""
        for kind in kind_counts:
            if kind not in self.kinds:
                self.kinds[kind] = len(self.kind_names)
                self.kind_names.append(kind)
        kinds = [(self.kinds[kind], ops) for kind, ops in kind_counts.items()]
        entries = [(self.keys.setdefault(key, len(self.keys)), *terms) for key, terms in pads]
        columns = [self.buffers.extend(list(zip(plan.sizes, plan.firsts, plan.lasts))), len(plan.sizes), output_buffer,
                   len(graph.ops), self.kind_counts.extend(kinds), len(kinds), len(graph.tensors),
                   self.pads.extend(entries), len(entries)]
        for build, table in self.scratch.items():
            sizes, steps, _ = plan.scratch(*build)
            columns += [table.extend(list(zip(sizes, steps))), len(sizes)]
        self.counts.extend([counts])
        self._added = True
        return self.parts.extend([columns])

    def flush(self) -> None:
        """Write the parts entered since the last flush to the arrays."""
        if not self._added:
            return
        self._added = False
        for table in (self.parts, self.counts, self.buffers, self.kind_counts, self.pads, *self.scratch.values()):
            table.flush()

    def compose(self, rows: np.ndarray) -> np.ndarray:
        """:func:`mcunas.estimators.fast_chain.compose` of the chain of parts ``rows``."""
        return fast_chain.compose(rows, self.parts.array, self.counts.array, self.kind_counts.array, self.pads.array,
                                  max(1, len(self.keys)), max(1, len(self.kinds)))

    def heads(self, rows: np.ndarray, kernels: str) -> tuple[int, int]:
        """The arena heads (bytes) of the chain of parts ``rows`` on the 32-bit target with
        ``kernels`` and on the host with the reference kernels."""
        m32, host = ("cortex-m", kernels), ("host", "reference")
        return fast_chain.chain_plan_bytes(rows, self.parts.array, self.buffers.array,
                                           self.scratch[m32].array, _SCRATCH_COLUMNS[m32],
                                           self.scratch[host].array, _SCRATCH_COLUMNS[host])


class _Cycles:
    """The cycles of every part's ops with one profile on one board, a run per part."""

    def __init__(self, profile: Profile, board: Board) -> None:
        self.profile = profile  # kept: the cache is keyed by the ids of both
        self.board = board
        self.starts = np.full(1024, -1, np.int64)
        self.counts = np.zeros(1024, np.int64)
        self.cycles = _Rows(1, np.float64)
        self.assumed: dict[int, tuple[tuple[str, str, float], ...]] = {}  # row -> (kind, class, cycles) of assumed ops

    def enter(self, parts: list[_Part]) -> None:
        """Enter the cycles of those of ``parts`` that have none yet."""
        for part in parts:
            row = part.row
            if row >= self.starts.shape[0]:
                grown = max(2 * self.starts.shape[0], row + 1)
                self.starts = np.concatenate([self.starts, np.full(grown - self.starts.shape[0], -1, np.int64)])
                self.counts = np.concatenate([self.counts, np.zeros(grown - self.counts.shape[0], np.int64)])
            if self.starts[row] >= 0:
                continue
            costs = self.profile.signature_costs(part.signatures, self.board)
            assumed = tuple([(kind, name, cycles) for kind, (name, cycles, is_assumed) in zip(part.op_kinds, costs) if is_assumed])
            if assumed:
                self.assumed[row] = assumed
            self.counts[row] = len(costs)
            self.starts[row] = self.cycles.extend([[cycles] for _, cycles, _ in costs])


def _part_graph(shape: tuple[int, ...], emit: Callable[[GraphBuilder, int], int]) -> Graph:
    """The graph of one part: an input of ``shape`` (its tensor 0), the ops ``emit`` appends,
    its last result marked as the graph output."""
    builder = GraphBuilder("part")
    x = builder.input(shape[1], shape[2], shape[3])
    return builder.finish(emit(builder, x))


def _make_part(tables: _Tables, graph: Graph, position: str) -> _Part:
    """Read a part's graph with the reference estimators and enter its facts in ``tables``;
    ``position``: ``first`` (its input is the graph input), ``middle`` or ``last`` (its output
    is the graph output)."""
    plan, tail = memory.arena_facts(graph)
    tensors = graph.tensors
    ops = graph.ops
    output = graph.outputs[0]
    buffers = [index for index, tensor in enumerate(tensors) if not tensor.is_constant and tensor.nbytes]
    output_buffer = buffers.index(output) if output in buffers else -1
    pads = []
    for index, op in enumerate(ops):
        key = memory.shared_padding_key(graph, index)
        if key is not None:
            pads.append((key, flash.tensor_terms([tensors[op.inputs[1]]])))
    # Stitching needs the input first among the planner buffers and the output after it; the
    # builtin-parameter phases of consecutive parts add up when each ends on the largest
    # alignment (memory.TailFacts).
    composable = bool(buffers) and buffers[0] == 0 and output_buffer > 0 and (
        position == "last" or all(nbytes % memory.BUILTIN_ALIGNMENT == 0 for nbytes in tail.builtin_bytes.values()))
    exact, constants = flash.tensor_terms(tensors if position == "first" else tensors[1:])
    counts = [
        graph.macs, graph.params, graph.param_bytes, len(ops), exact + flash.op_terms(ops), constants,
        tail.builtin_bytes["host"], tail.builtin_bytes["cortex-m"], tail.prepare_bytes["host"], tail.prepare_bytes["cortex-m"],
        *(tail.request_counts[key] for key in memory.REQUEST_KEYS),
    ]
    row = tables.add(graph, plan, tail.kind_counts, counts, output_buffer, pads)
    return _Part(row, tensors[output].shape, composable, tuple(op.kind for op in ops), tail.io_channels,
                 tuple(op_signature(graph, op) for op in ops))


class _PartCache:
    """Parts by their layers and input shape, the tables of their facts, and per profile and
    board their ops' cycles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fallbacks = 0
        self._reset()

    def clear(self) -> None:
        """Forget every part."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self.parts: dict[tuple, _Part] = {}  # by (layers, input shape); stems by ("stem", input shape, layer)
        self.tables = _Tables()

    def chain(self, net: NetSpec) -> tuple[list[_Part], _Tables]:
        """The parts of ``net`` in execution order, and the tables they are rows of.

        After the stem, each part is found among the successors of the one before (by the id
        of its block: equal blocks from a cached block function are one object), else by its
        layers and input shape, and then entered as a successor.
        """
        with self._lock:
            if len(self.parts) >= MAX_PARTS:
                self._reset()
            parts = self.parts
            stem = net.stem
            height, width = net.input_size
            shape = (1, height, width, net.input_channels)
            key = ("stem", shape, stem)
            part = parts.get(key)
            if part is None:
                emit = LAYER_EMITTERS[stem.kind]
                part = parts[key] = self._new(shape, lambda builder, x: emit(builder, x, stem, stem.name), "first")
            found = [part]
            for block in net.blocks:
                successor = part.successors.get(id(block))
                if successor is None:
                    key = (block.layers, block.residual, part.output_shape)
                    following = parts.get(key)
                    if following is None:
                        following = parts[key] = self._new(key[2], lambda builder, x: emit_block(builder, x, block),
                                                           "middle")
                    successor = part.successors[id(block)] = (block, following)
                part = successor[1]
                found.append(part)
            successor = part.successors.get(("head", net.num_classes))
            if successor is None:
                key = ("head", part.output_shape, net.num_classes)
                following = parts.get(key)
                if following is None:
                    classes = net.num_classes
                    following = parts[key] = self._new(key[1], lambda builder, x: emit_head(builder, x, classes), "last")
                successor = part.successors[("head", net.num_classes)] = (None, following)
            found.append(successor[1])
            self.tables.flush()
            return found, self.tables

    def _new(self, shape: tuple[int, ...], emit: Callable[[GraphBuilder, int], int], position: str) -> _Part:
        return _make_part(self.tables, _part_graph(shape, emit), position)

    def cycles(self, tables: _Tables, profile: Profile, board: Board, parts: list[_Part] | None = None) -> _Cycles:
        """The cycles table of ``profile`` on ``board`` for the parts of ``tables``, with the
        cycles of ``parts`` entered if given."""
        with self._lock:
            table = tables.cycles.get((id(profile), id(board)))
            if table is None or table.profile is not profile or table.board is not board:
                table = tables.cycles[id(profile), id(board)] = _Cycles(profile, board)
            if parts is not None:
                table.enter(parts)
                table.cycles.flush()
            return table


_CACHE = _PartCache()


class _ChainFigures:
    """The :class:`~mcunas.estimators.cost.CostFigures` of a chain of parts (the whole graph)."""

    def __init__(self, parts: list[_Part], tables: _Tables):
        self._parts = parts
        self._tables = tables
        self._rows = rows = np.array([part.row for part in parts], np.int64)
        composed = tables.compose(rows).tolist()
        self._counts = counts = composed[:_COUNT_COLUMNS]
        self._tensors, self._duplicates, self._duplicate_exact, self._duplicate_constants = (
            composed[_COUNT_COLUMNS:_COUNT_COLUMNS + 4])
        self.macs: int = counts[_MACS]
        self.params: int = counts[_PARAMS]
        self.param_bytes: int = counts[_PARAM_BYTES]
        # ops per kind, kinds in order of first appearance (as memory.arena_facts and
        # flash.model_terms count them)
        kinds = composed[_COUNT_COLUMNS + 4:]
        distinct = len(kinds) // 2
        names = tables.kind_names
        self._kind_counts = {names[kind]: ops for kind, ops in zip(kinds[:distinct], kinds[distinct:])}
        self._arenas: dict[str, tuple[int, int, int]] = {}  # by kernel library: the figures serve several boards
        self._model_bytes: int | None = None

    def arena_bytes_pair(self, kernels: str) -> tuple[int, int]:
        return self._arena_figures(kernels)[:2]

    def activation_bytes(self, kernels: str) -> int:
        return self._arena_figures(kernels)[2]

    def _arena_figures(self, kernels: str) -> tuple[int, int, int]:
        """(32-bit arena, host arena, 32-bit head) with ``kernels`` (computed once per library)."""
        found = self._arenas.get(kernels)
        if found is None:
            found = self._arenas[kernels] = self._compute_arenas(kernels)
        return found

    def _compute_arenas(self, kernels: str) -> tuple[int, int, int]:
        counts = self._counts
        tail = memory.TailFacts(
            {"host": counts[_BUILTIN_HOST], "cortex-m": counts[_BUILTIN_M32]},
            self._kind_counts,
            {"host": counts[_PREPARE_HOST], "cortex-m": counts[_PREPARE_M32]},
            self._tensors - self._duplicates,
            counts[_OPS],
            dict(zip(memory.REQUEST_KEYS, counts[_REQUESTS])),
            (self._parts[0].io_channels[0], self._parts[-1].io_channels[1]),
        )
        head, head_host = self._tables.heads(self._rows, kernels)
        return (head + memory.tail_of_facts(tail, "cortex-m", kernels),
                head_host + memory.tail_of_facts(tail, "host", "reference"), head)

    def model_bytes(self) -> int:
        if self._model_bytes is None:  # computed once: the figures serve several boards
            counts = self._counts
            self._model_bytes = flash.bytes_of_terms(flash.ModelTerms(
                counts[_EXACT] - self._duplicate_exact, len(self._kind_counts),
                counts[_CONSTANTS] - self._duplicate_constants, self._kind_counts))
        return self._model_bytes

    def op_kinds(self) -> Iterable[str]:
        return self._kind_counts.keys()

    def latency(self, profile: Profile, board: Board) -> LatencyEstimate:
        table = _CACHE.cycles(self._tables, profile, board)
        total = fast_chain.chain_cycles(self._rows, table.starts, table.counts, table.cycles.array[:, 0])
        if total < 0:  # a part new to this profile and board
            table = _CACHE.cycles(self._tables, profile, board, self._parts)
            total = fast_chain.chain_cycles(self._rows, table.starts, table.counts, table.cycles.array[:, 0])
        assumed = table.assumed
        if assumed:
            assumed = chain.from_iterable([assumed[part.row] for part in self._parts if part.row in assumed])
        return profile.latency_of(total, assumed or (), board)


def arch_figures(space: Space, arch: Any) -> CostFigures:
    """The :class:`~mcunas.estimators.cost.CostFigures` of ``arch`` of ``space``: from cached parts,
    or (counted by :func:`cache_info`) from its graph when a part's facts do not add up.

    To cost one architecture on several boards, make its figures once and call
    :func:`mcunas.estimators.cost.cost_of` per board (the arenas are kept per kernel library).
    """
    parts, tables = _CACHE.chain(space.spec(arch, name=""))
    if all([part.composable for part in parts]):
        return _ChainFigures(parts, tables)
    _CACHE.fallbacks += 1
    logger.debug("fast estimate: %s has parts whose facts do not add up; estimated from its graph", arch)
    return GraphFigures(space.graph(arch))


def estimate_arch(space: Space, arch: Any, board: Board | str | Path, runtime: str = DEFAULT_RUNTIME, **options: Any) -> Cost:
    """The Cost of ``arch`` of ``space``, equal to ``estimate(space.graph(arch), board, runtime,
    **options)`` (:func:`mcunas.estimators.cost.estimate`; ``options``: its keyword options, e.g.
    ``profile``, ``max_latency_ms``, ``latency_bound``, the byte budgets, ``front_end``), from
    cached parts (see the module
    docstring)."""
    return cost_of(arch_figures(space, arch), board, runtime, **options)


def cache_info() -> dict[str, int]:
    """The fast estimator's caches in this process: ``parts`` held, ``fallbacks`` (architectures
    estimated from their graph because a part's facts do not add up)."""
    return {"parts": len(_CACHE.parts), "fallbacks": _CACHE.fallbacks}


def clear_cache() -> None:
    """Forget every cached part (a cold start, for benchmarks and tests)."""
    _CACHE.clear()
