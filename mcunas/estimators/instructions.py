"""Fitting the instruction model: instructions per term of each kernel class, and assumed costs.

* :func:`fit_instructions` -- per class, non-negative least squares of executed-instruction
  counts per op on the class's terms (:mod:`mcunas.estimators.kernels`), exact (every support of
  the few columns is tried), minimizing squared *relative* errors: a 2,000-instruction PAD and a
  20-million-instruction convolution constrain the fit alike; a cost counted from a kernel's
  compiled loop (:data:`COUNTED_COSTS`) is held, not fitted.
* :func:`complete_classes` -- every class of a library: the fitted ones, and for classes without
  instruction data the documented rules of :data:`ASSUMED_COSTS`, each built from fitted
  coefficients of the kernels whose loops it shares (so assumptions follow the data of the
  build they are used with).

numpy is imported lazily (fitting only; estimation needs none).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Sequence

from mcunas.errors import ProfileError
from mcunas.estimators.kernels import CLASS_TERMS, INT16_BASES, MEASURED_CLASSES, op_terms
from mcunas.graph.ir import Graph

# Classes whose kernel fetches code from flash past a small instruction cache (the latency
# model's ``fetch_bytes_per_instruction``): convolutions, whose per-pixel code runs through
# several functions (im2col copies, the matrix kernel, requantization) or a large unrolled body.
FETCH_CLASSES: frozenset[str] = frozenset(
    {"conv_1x1", "conv", "depthwise_3x3", "depthwise", "depthwise_mult", "transpose_conv"}
    | {f"{name}_int16" for name in ("conv_1x1", "conv", "depthwise_3x3", "depthwise", "depthwise_mult")}
)

# depthwise_conv_s8_mult_4 (CMSIS-NN arm_depthwise_conv_s8.c): per kernel tap inside the input
# one input load and offset add, then 4 x (kernel load + multiply-accumulate), and 3 loop
# instructions: 13 instructions per 4 MACs.
MULT4_INSTRUCTIONS_PER_MAC = 13 / 4

# Coefficients counted from a kernel's compiled loop instead of fitted (library -> class -> term ->
# instructions per unit); :func:`fit_instructions` fits the class's other terms to what they leave.
# reference AveragePool (integer_ops/pooling.h), int8: the innermost loop over the window columns
# inside the input is 6 Cortex-M4 instructions per tap -- ldrsb, add to the accumulator, advance the
# input pointer by the depth, increment, compare, branch (the kernel's loop compiled with
# stand-ins for TFLM's RuntimeShape/Offset by arm-none-eabi-gcc 12.2.1 -O2 -mcpu=cortex-m4, the
# compiler and flags of the instruction counts; the loops around it are
# fitted, their code depends on how the kernel is inlined). The three measured AVERAGE_POOL_2D ops
# cannot separate per-op, per-output, per-row and per-tap costs, nor three of them once one op is
# left out; unconstrained on taps, rows and outputs they give 6.1 per tap, and with 6 held they
# are met exactly by whole numbers per op, row and output.
COUNTED_COSTS: dict[str, dict[str, dict[str, float]]] = {"reference": {"pool": {"window": 6.0}}}

# Assumed class -> (term -> [(measured class, its term, factor), ...], why). A term's value is the
# sum of factor x the measured coefficient; classes are of the same library (``reference:`` picks
# the reference build's fit, for kernels that are portable C in both builds).
ASSUMED_COSTS: dict[str, tuple[dict[str, list[tuple[str, str, float]]], str]] = {
    "depthwise_mult": (
        {"op": [("depthwise", "op", 1.0)], "out": [("depthwise", "out", 1.0)], "pixel": [("depthwise", "pixel", 1.0)]},
        "arm_depthwise_conv_s8 (channel multiplier > 1): depthwise_conv_s8_mult_4 costs 13 instructions per 4 MACs "
        "(counted from its loop); per output and pixel as arm_depthwise_conv_s8_opt (same requantization and "
        "loop set-up); multipliers not divisible by 4 run a slower scalar loop (not modelled)",
    ),
    "transpose_conv": (
        {"op": [("conv", "op", 1.0)], "mac": [("conv", "mac", 1.0)], "out": [("conv", "out", 1.0)],
         "pixel": [("conv", "pixel", 1.0)], "window": [("conv", "window", 1.0)], "column": [("conv", "column", 1.0)]},
        "TRANSPOSE_CONV costed as the CONV_2D of the same MACs, outputs and taps (arm_transpose_conv_s8 / the "
        "reference TransposeConv scatter the same products into an int32 buffer, then requantize)",
    ),
    "max_pool": (
        {"op": [("pool", "op", 1.0)], "window": [("pool", "window", 1.0)], "window_row": [("pool", "window_row", 1.0)],
         "out": [("pool", "out", 1.0)]},
        "MAX_POOL_2D as AVERAGE_POOL_2D: one compare per window tap where the average pool adds "
        "(arm_max_pool_s8 / reference MaxPool)",
    ),
    "copy": (
        {"op": [("reshape", "op", 1.0)], "element": [("reshape", "element", 1.0)]},
        "SQUEEZE/EXPAND_DIMS as RESHAPE: a memcpy of the buffer when input and output do not alias",
    ),
    "gather_copy": (
        {"op": [("reshape", "op", 1.0)], "element": [("reshape", "element", 1.0)], "rows": [("pad", "rows", 1.0)]},
        "CONCATENATION/SPLIT/SPLIT_V/PACK/UNPACK/SLICE: one memcpy per contiguous chunk (taken as the innermost "
        "axis), per byte as RESHAPE's memcpy, per chunk as one PAD row (a memset/memcpy call pair)",
    ),
    "index_copy": (
        {"op": [("reshape", "op", 1.0)], "element": [("reference:pad", "input", 1.0)]},
        "TRANSPOSE/STRIDED_SLICE/GATHER/RESIZE_NEAREST_NEIGHBOR: a nested loop with index arithmetic per element, "
        "costed as one copied element of the reference PadImpl loop nest",
    ),
    "resize_bilinear": (
        {"op": [("reshape", "op", 1.0)], "element": [("reference:pad", "input", 3.0)]},
        "RESIZE_BILINEAR: per output element two source coordinates and a 4-tap interpolation, costed as three "
        "copied elements of the reference PadImpl loop nest",
    ),
    "requantize": (
        {"op": [("add", "op", 1.0)], "element": [("add", "element", 1.0 / 3.0)]},
        "QUANTIZE/DEQUANTIZE: one rescale per element; ADD does three (two inputs, one output) per element",
    ),
    "elementwise_binary": (
        {"op": [("add", "op", 1.0)], "element": [("add", "element", 1.0)]},
        "SUB/MUL: per element as ADD (two input offsets, one difference or product, requantization)",
    ),
    "broadcast_binary": (
        {"op": [("add", "op", 1.0)], "element": [("add", "element", 1.0), ("reference:pad", "input", 1.0)]},
        "ADD/SUB/MUL with broadcasting: per element as ADD plus the 4-D index walk of the broadcast path, "
        "costed as one copied element of the reference PadImpl loop nest",
    ),
    "activation": (
        {"op": [("add", "op", 1.0)], "element": [("add", "element", 2.0 / 3.0)]},
        "LOGISTIC/TANH/HARD_SWISH/LEAKY_RELU/PRELU/RELU: two fixed-point rescales per element (ADD does three)",
    ),
    "reduce": (
        {"op": [("mean", "op", 1.0)], "input": [("mean", "input", 1.0)], "out": [("mean", "out", 1.0)]},
        "SUM/REDUCE_MAX/ARG_MAX as MEAN: the same reduce_common.cc loop over the reduced axes (an upper bound "
        "for MAX and ARG_MAX, which need no division)",
    ),
    "log_softmax": (
        {"op": [("softmax", "op", 1.0)], "element": [("softmax", "element", 1.5)]},
        "LOG_SOFTMAX: SOFTMAX's max and exp-sum passes plus a log per element (x1.5 per element)",
    ),
    "other": (
        {"op": [("reshape", "op", 1.0)], "element": [("add", "element", 1.0)]},
        "op kinds without a class: per op as RESHAPE (interpreter dispatch), per output element as ADD "
        "(an element-wise op with requantization)",
    ),
}
# Where a rule names a term the source class of this library lacks (the reference loop nests
# count taps where CMSIS-NN counts im2col windows, pixels where it counts rows).
_TERM_ALIASES = {"window": "tap", "rows": "pixel"}
INT16_NOTE = ("int16 activations: the int8 kernel's coefficients, per output x2 (CMSIS-NN's *_s16 kernels "
              "requantize through 64-bit accumulators, arm_nn_requantize_s64)")


def fit_instructions(
    samples: Sequence[tuple[Graph, Sequence[float]]], library: str, fixed: dict[str, dict[str, float]] | None = None
) -> dict[str, tuple[float, ...]]:
    """Instructions per term of every class that occurs in ``samples``.

    Args:
        samples: (graph, executed instructions per op in execution order) per model.
        library: the kernel library of the counts (``cmsis-nn`` | ``reference``).
        fixed: class -> term -> coefficient held at that value (a cost measured elsewhere, see
            :func:`memcpy_tie`), besides the library's :data:`COUNTED_COSTS`; the other terms are
            fitted to what they leave.

    Returns:
        class -> coefficients in :data:`mcunas.estimators.kernels.CLASS_TERMS` order.
    """
    import numpy as np

    rows: dict[str, list[tuple[tuple[float, ...], float]]] = {}
    for graph, counts in samples:
        if len(counts) != len(graph.ops):
            raise ProfileError(f"{graph.name}: {len(counts)} instruction counts for {len(graph.ops)} ops")
        for op, count in zip(graph.ops, counts):
            terms = op_terms(graph, op, library)
            rows.setdefault(terms.op_class, []).append((terms.units, float(count)))
    fitted = {}
    for name, class_rows in rows.items():
        names = CLASS_TERMS[library][name]
        held = {**COUNTED_COSTS.get(library, {}).get(name, {}), **(fixed or {}).get(name, {})}
        units = np.array([u for u, _ in class_rows], dtype=float)
        counts = np.array([c for _, c in class_rows], dtype=float)
        free = [i for i, term in enumerate(names) if term not in held]
        rest = counts - sum(units[:, names.index(term)] * value for term, value in held.items())
        weights = 1.0 / np.maximum(counts, 1.0)
        design = units[:, free] * weights[:, None]
        column_scale = design.max(axis=0)
        column_scale[column_scale == 0] = 1.0  # a term that is 0 in every row stays 0
        solution = nonnegative_least_squares(design / column_scale, rest * weights) / column_scale
        values = [float(held.get(term, 0.0)) for term in names]
        for i, value in zip(free, solution):
            values[i] = float(value)
        fitted[name] = tuple(values)
    return fitted


def memcpy_tie(cmsis_fit: dict[str, tuple[float, ...]]) -> dict[str, dict[str, float]]:
    """RESHAPE's per-element cost held at the memcpy rate measured on PAD's copied elements.

    TFLM's RESHAPE (kernels/reshape.cc, the same in both builds) copies its input with memcpy
    when input and output do not share a buffer; CMSIS-NN's PAD (arm_pad_s8) copies the input
    rows with arm_memcpy_s8 (memcpy): its ``input`` coefficient, fitted on 67 PADs, is the
    library's memcpy cost per int8 element. The three measured RESHAPEs (64, 64 and 256
    elements) alone cannot separate a per-op from a per-element cost when one is left out.
    """
    pad = cmsis_fit.get("pad")
    if pad is None:
        return {}
    return {"reshape": {"element": pad[CLASS_TERMS["cmsis-nn"]["pad"].index("input")]}}


def nonnegative_least_squares(design: Any, target: Any) -> Any:
    """argmin ||design @ x - target|| subject to x >= 0, exactly, for a few columns (numpy arrays).

    The optimum is the unconstrained least-squares solution on its own support, so trying every
    subset of columns (2**columns, at most 64 here) and keeping the best non-negative solution
    finds it. Where several solutions fit equally well (fewer rows than terms, as in some
    leave-one-out fits), the one of least norm (columns scaled to [0, 1]) wins: the cost is
    spread over correlated terms rather than put on one of them.
    """
    import numpy as np

    columns = design.shape[1]
    candidates = [(float(target @ target), np.zeros(columns))]
    for size in range(1, columns + 1):
        for subset in combinations(range(columns), size):
            chosen = list(subset)
            values = np.linalg.lstsq(design[:, chosen], target, rcond=None)[0]
            if (values < 0).any():
                continue
            solution = np.zeros(columns)
            solution[chosen] = values
            residual = target - design @ solution
            candidates.append((float(residual @ residual), solution))
    best = min(residual for residual, _ in candidates)
    tolerance = 1e-9 * float(target @ target)
    tied = [solution for residual, solution in candidates if residual <= best + tolerance]
    return min(tied, key=lambda solution: float(solution @ solution))


def complete_classes(
    fitted: dict[str, dict[str, tuple[float, ...]]], library: str
) -> dict[str, tuple[tuple[float, ...], str]]:
    """Every class of ``library``: (coefficients, assumed note) -- "" for fitted classes.

    Args:
        fitted: library -> class -> coefficients from :func:`fit_instructions`, for every
            library (the assumptions of one library may use the other's fit).
        library: the library to complete.

    Raises ProfileError when a measured class of the library has no fit (no data for it).
    """
    own = fitted[library]
    terms = CLASS_TERMS[library]
    missing = sorted(MEASURED_CLASSES[library] - set(own))
    if missing:
        raise ProfileError(f"{library}: no instruction data for the classes {', '.join(missing)}")

    def coefficient(source: str, term: str) -> float:
        other, _, name = source.rpartition(":")
        source_library = "reference" if other == "reference" else library
        table = fitted[source_library]
        values = table[name] if name in table else derived[name][0]
        names = CLASS_TERMS[source_library][name]
        term = term if term in names else _TERM_ALIASES.get(term, "")
        return values[names.index(term)] if term in names else 0.0

    derived: dict[str, tuple[tuple[float, ...], str]] = {name: (values, "") for name, values in own.items()}

    for name, (rules, why) in ASSUMED_COSTS.items():
        if name in derived or name not in terms:
            continue
        values = [sum(factor * coefficient(source, term) for source, term, factor in rules.get(t, [])) for t in terms[name]]
        if name == "depthwise_mult":
            values[terms[name].index("mac")] = MULT4_INSTRUCTIONS_PER_MAC
        derived[name] = (tuple(values), why)
    for base in INT16_BASES:
        if base in derived and f"{base}_int16" in terms:
            values = tuple(v * (2.0 if t == "out" else 1.0) for v, t in zip(derived[base][0], terms[base]))
            derived[f"{base}_int16"] = (values, INT16_NOTE + (f"; int8 class assumed too: {derived[base][1]}"
                                                              if derived[base][1] else ""))
    return {name: derived[name] for name in terms}
