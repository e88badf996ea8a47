"""The fast estimator's loops over a chain of graph parts, compiled (numba).

A graph made of parts that run one after the other (each part's graph input is the previous
part's output; :mod:`mcunas.estimators.fast`) is given as the parts' rows in tables of their
facts. :func:`compose` adds the parts' counts (flash terms, tail facts, ops per kind) and
takes out the padding constants the converter stores once;
:func:`chain_cycles` adds their ops' cycles in execution order (as ``Profile.latency_of`` does);
:func:`chain_plan_bytes` stitches their planner buffers and places them as TFLM's
``GreedyMemoryPlanner`` does. The placement rule is the one of
:func:`mcunas.estimators.memory.greedy_plan_bytes` (the reference, pure Python): buffers by size,
largest first, ties later-added first; each at the lowest offset, scanning the placed buffers
that overlap it in time in order of offset, where the gap before the next one is large enough.
Both keep, per step, the placed buffers alive then sorted by offset (here in fixed arrays: a
few microseconds for a hundred buffers); ``tests/test_fast_estimate.py`` compares the two on
random buffers and, through :mod:`mcunas.estimators.fast`, on thousands of space graphs.

Sums are plain float64/int64 additions in order (no fast-math), so they equal CPython's.
Compiled on first use and cached on disk (``cache=True``: the package's ``__pycache__``, or
numba's user cache folder where that is read-only); importing this module imports numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


# Columns of the parts table: where a part's planner buffers are and which is its output, its
# ops, where its ops per kind are, its tensors, where its PAD entries are.
BUFFER_START, BUFFER_COUNT, OUTPUT_BUFFER, OP_COUNT, KINDS_START, KINDS_COUNT, TENSORS, PADS_START, PADS_COUNT = range(9)
PART_COLUMNS = 9


@njit(cache=True)
def greedy_plan_bytes(sizes: np.ndarray, firsts: np.ndarray, lasts: np.ndarray) -> int:
    """Arena bytes of the greedy plan of buffers given in AddBuffer order (int64 arrays: bytes,
    first and last step), as :func:`mcunas.estimators.memory.greedy_plan_bytes`: per step, the
    placed buffers alive then, sorted by offset."""
    count = sizes.shape[0]
    if count == 0:
        return 0
    steps = 0
    longest = 0
    for buffer in range(count):
        steps = max(steps, lasts[buffer] + 2)
        longest = max(longest, lasts[buffer] - firsts[buffer] + 1)
    alive = np.zeros(steps, np.int64)
    for buffer in range(count):
        alive[firsts[buffer]] += 1
        alive[lasts[buffer] + 1] -= 1
    most = 0
    running = 0
    for step in range(steps):
        running += alive[step]
        most = max(most, running)
    # Largest first, ties later-added first: descending (size, index), a unique key.
    order = np.empty(count, np.int64)
    for buffer in range(count):
        key = sizes[buffer] * count + buffer
        at = buffer
        while at > 0 and sizes[order[at - 1]] * count + order[at - 1] < key:
            order[at] = order[at - 1]
            at -= 1
        order[at] = buffer
    # Per step, the placed buffers alive then as (offset, end), sorted by offset: row
    # step * most of the flat arrays; near_*: those of a buffer's steps, merged.
    offsets = np.empty(steps * most, np.int64)
    ends = np.empty(steps * most, np.int64)
    placed = np.zeros(steps, np.int64)
    near_offsets = np.empty(longest * most, np.int64)
    near_ends = np.empty(longest * most, np.int64)
    high = 0
    for position in range(count):
        buffer = order[position]
        size = sizes[buffer]
        start = firsts[buffer]
        stop = lasts[buffer]
        candidate = 0
        if start == stop:  # one step: its list is sorted already
            base = start * most
            for j in range(placed[start]):
                if offsets[base + j] - candidate >= size:
                    break
                candidate = max(candidate, ends[base + j])
        else:  # duplicates and the order among equal offsets do not change the result
            near = 0
            for step in range(start, stop + 1):
                base = step * most
                for j in range(placed[step]):
                    offset = offsets[base + j]
                    at = near
                    while at > 0 and near_offsets[at - 1] > offset:
                        near_offsets[at] = near_offsets[at - 1]
                        near_ends[at] = near_ends[at - 1]
                        at -= 1
                    near_offsets[at] = offset
                    near_ends[at] = ends[base + j]
                    near += 1
            for j in range(near):
                if near_offsets[j] - candidate >= size:
                    break
                candidate = max(candidate, near_ends[j])
        end = candidate + size
        for step in range(start, stop + 1):
            base = step * most
            at = placed[step]
            while at > 0 and offsets[base + at - 1] > candidate:
                offsets[base + at] = offsets[base + at - 1]
                ends[base + at] = ends[base + at - 1]
                at -= 1
            offsets[base + at] = candidate
            ends[base + at] = end
            placed[step] += 1
        high = max(high, end)
    return high


@njit(cache=True)
def _with_scratch(sizes, firsts, lasts, used, rows, parts, scratch, start_column):
    """The tensor buffers ``[:used]`` followed by one build's scratch buffers (each live at the
    step of the op requesting it), planned."""
    total = used
    for k in range(rows.shape[0]):
        total += parts[rows[k], start_column + 1]
    all_sizes = np.empty(total, np.int64)
    all_firsts = np.empty(total, np.int64)
    all_lasts = np.empty(total, np.int64)
    all_sizes[:used] = sizes[:used]
    all_firsts[:used] = firsts[:used]
    all_lasts[:used] = lasts[:used]
    at = used
    offset = 0
    for k in range(rows.shape[0]):
        row = rows[k]
        start = parts[row, start_column]
        for j in range(parts[row, start_column + 1]):
            all_sizes[at] = scratch[start + j, 0]
            all_firsts[at] = scratch[start + j, 1] + offset
            all_lasts[at] = scratch[start + j, 1] + offset
            at += 1
        offset += parts[row, OP_COUNT]
    return greedy_plan_bytes(all_sizes, all_firsts, all_lasts)


@njit(cache=True)
def chain_plan_bytes(
    rows: np.ndarray,
    parts: np.ndarray,
    buffers: np.ndarray,
    scratch_a: np.ndarray,
    column_a: int,
    scratch_b: np.ndarray,
    column_b: int,
) -> tuple[int, int]:
    """Head bytes of the graph made of the parts ``rows`` (in execution order) on two builds.

    ``parts[r]`` (columns above): part ``r``'s planner buffers are
    ``buffers[parts[r, BUFFER_START]:][:parts[r, BUFFER_COUNT]]`` as (bytes, first step, last
    step), steps counted from the part's first op (1), in AddBuffer order, its graph input
    first; ``OUTPUT_BUFFER`` is the position of its output among them. A build's scratch
    buffers of part ``r`` are ``scratch[parts[r, column]:][:parts[r, column + 1]]`` as (bytes,
    step). In the whole graph a part's steps follow those of the parts before it; its input
    buffer is the previous part's output, which lives until the input's last use in this part;
    tensor buffers come first, then the scratch buffers, in order of the ops requesting them.
    """
    total = 0
    for k in range(rows.shape[0]):
        total += parts[rows[k], BUFFER_COUNT] - (1 if k > 0 else 0)
    sizes = np.empty(total, np.int64)
    firsts = np.empty(total, np.int64)
    lasts = np.empty(total, np.int64)
    at = 0
    offset = 0
    previous_output = -1
    for k in range(rows.shape[0]):
        row = rows[k]
        start = parts[row, BUFFER_START]
        skip = 0
        if k > 0:  # the input is the previous part's output
            lasts[previous_output] = offset + buffers[start, 2]
            skip = 1
        base = at - skip
        for j in range(skip, parts[row, BUFFER_COUNT]):
            sizes[at] = buffers[start + j, 0]
            firsts[at] = buffers[start + j, 1] + offset
            lasts[at] = buffers[start + j, 2] + offset
            at += 1
        previous_output = base + parts[row, OUTPUT_BUFFER]
        offset += parts[row, OP_COUNT]
    return (_with_scratch(sizes, firsts, lasts, at, rows, parts, scratch_a, column_a),
            _with_scratch(sizes, firsts, lasts, at, rows, parts, scratch_b, column_b))


@njit(cache=True)
def compose(rows, parts, counts, kind_counts, pads, keys, kinds):
    """What the graph of the parts ``rows`` (in execution order) adds up to, in one array: the
    sum of their ``counts``; its tensors; of the duplicate padding constants their number and
    the sum of their 2 :func:`flash.tensor_terms`; its op kinds (ids < ``kinds``) in order of
    first appearance, then the ops of each.

    Part ``r`` has ``parts[r, TENSORS]`` tensors, its input included (a later part's input is
    the previous part's output); its ops per kind are
    ``kind_counts[parts[r, KINDS_START]:][:parts[r, KINDS_COUNT]]`` as (kind id, ops), kinds
    in order of first appearance in the part. Its PAD entries are
    ``pads[parts[r, PADS_START]:][:parts[r, PADS_COUNT]]`` as (padding key id < ``keys``, the
    paddings tensor's 2 terms); every paddings tensor after the first of its key is a duplicate
    (as ``memory.duplicate_constant_indices``).
    """
    count = rows.shape[0]
    columns = counts.shape[1]
    total = np.zeros(columns, np.int64)
    placed = 0
    kind_ops = np.zeros(kinds, np.int64)
    kind_order = np.empty(kinds, np.int64)
    distinct = 0
    seen = np.zeros(keys, np.bool_)
    found = 0
    duplicate_terms = np.zeros(2, np.int64)
    for k in range(count):
        row = rows[k]
        for column in range(columns):
            total[column] += counts[row, column]
        placed += parts[row, TENSORS] - (1 if k > 0 else 0)
        start = parts[row, KINDS_START]
        for j in range(parts[row, KINDS_COUNT]):
            kind = kind_counts[start + j, 0]
            if kind_ops[kind] == 0:
                kind_order[distinct] = kind
                distinct += 1
            kind_ops[kind] += kind_counts[start + j, 1]
        start = parts[row, PADS_START]
        for j in range(parts[row, PADS_COUNT]):
            key = pads[start + j, 0]
            if seen[key]:
                found += 1
                duplicate_terms[0] += pads[start + j, 1]
                duplicate_terms[1] += pads[start + j, 2]
            seen[key] = True
    packed = np.empty(columns + 4 + 2 * distinct, np.int64)
    packed[:columns] = total
    packed[columns] = placed
    packed[columns + 1] = found
    packed[columns + 2:columns + 4] = duplicate_terms
    packed[columns + 4:columns + 4 + distinct] = kind_order[:distinct]
    packed[columns + 4 + distinct:] = kind_ops[kind_order[:distinct]]
    return packed


@njit(cache=True)
def chain_cycles(rows: np.ndarray, starts: np.ndarray, counts: np.ndarray, cycles: np.ndarray) -> float:
    """The cycles of the ops of parts ``rows`` added in execution order from 0.0 (part ``r``'s
    are ``cycles[starts[r]:][:counts[r]]``); -1.0 when a part has none entered (``starts[r] < 0``
    or ``r`` past the end of ``starts``)."""
    total = 0.0
    for k in range(rows.shape[0]):
        row = rows[k]
        if row >= starts.shape[0] or starts[row] < 0:
            return -1.0
        start = starts[row]
        for j in range(counts[row]):
            total += cycles[start + j]
    return total
