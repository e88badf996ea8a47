"""Fitting latency profiles.

Two fits, both small least-squares problems:

* :func:`fit_op_costs` - per-op cost coefficients of each op class from per-op counts
  (instructions or cycles) of whole models, by non-negative least squares (exact, by trying
  every support: a class has at most 4 terms). Rows are weighted
  by ``1 / sqrt(count)`` (errors grow with the size of an op, as with counting noise), so that
  both the large convolutions and the small element-wise ops constrain the fit.
* :func:`fit_profile` - calibration to one board: a single factor that scales a profile's
  cycles so that predicted latencies match latencies measured on that board (whole models,
  milliseconds). One factor, because a handful of measurements cannot identify more.

The packaged profiles are produced from the MLPerf Tiny data by ``benchmarks/latency_fit.py``
with these functions; ``mcunas estimate calibrate`` runs :func:`fit_profile` on a user's CSV.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mcunas.errors import ProfileError
from mcunas.estimators.runtime import DEFAULT_RUNTIME
from mcunas.estimators.latency import TERMS, Profile, op_class, op_terms, resolve_profile
from mcunas.graph.ir import Graph
from mcunas.io import write_json

if TYPE_CHECKING:
    from mcunas.estimators.board import Board

# Terms fitted per runtime and op class; the others stay 0. The choice follows the kernels:
# CMSIS-NN convolutions copy one input row per kernel window position (im2col: per_window),
# then run a matrix product (per_mac) and requantize each output (per_output_element); the
# TFLM reference kernels run a direct loop nest whose inner channel loop starts once per
# output element and kernel tap (per_tap). Depthwise convolutions get no per-output term: the
# data hold only 3x3 depthwise kernels, for which outputs are proportional to MACs. ADD gets
# no per-op term: the data's three ADDs (one model) cannot separate a constant from the
# per-element cost, which dominates.
_SHARED_TERMS: dict[str, tuple[str, ...]] = {
    "depthwise": ("per_op", "per_mac"),
    "fully_connected": ("per_op", "per_mac", "per_output_element"),
    "add": ("per_output_element",),
    "pool": ("per_op", "per_input_element", "per_output_element"),
    "mean": ("per_op", "per_input_element", "per_output_element"),
    "pad": ("per_op", "per_output_element"),
    "reshape": ("per_op", "per_output_element"),
    "softmax": ("per_op", "per_output_element"),
    "other": ("per_op", "per_output_element"),
}
FIT_TERMS: dict[str, dict[str, tuple[str, ...]]] = {
    "tflm-cmsis-nn": {
        "conv_1x1": ("per_mac", "per_window", "per_output_element"),
        "conv": ("per_op", "per_mac", "per_window", "per_output_element"),
        **_SHARED_TERMS,
    },
    "tflm-reference": {
        "conv_1x1": ("per_op", "per_mac", "per_output_element"),
        "conv": ("per_op", "per_mac", "per_tap", "per_output_element"),
        **_SHARED_TERMS,
    },
}


def fit_op_costs(
    samples: Sequence[tuple[Graph, Sequence[float]]], runtime: str
) -> dict[str, tuple[float, ...]]:
    """Fit per-op cost coefficients by non-negative least squares, one op class at a time.

    Args:
        samples: (graph, count per op in execution order) for each model; the counts are in
            the unit the coefficients will have (instructions or cycles).
        runtime: selects the fitted terms (:data:`FIT_TERMS`).

    Returns:
        class -> coefficients in :data:`mcunas.estimators.latency.TERMS` order, for the classes
        that occur in the samples only.
    """
    import numpy as np

    rows: dict[str, list[tuple[tuple[int, ...], float]]] = {}
    for graph, counts in samples:
        if len(counts) != len(graph.ops):
            raise ValueError(f"{graph.name}: {len(counts)} counts for {len(graph.ops)} ops")
        for op, count in zip(graph.ops, counts):
            rows.setdefault(op_class(op), []).append((op_terms(graph, op), float(count)))
    fitted: dict[str, tuple[float, ...]] = {}
    for name, class_rows in rows.items():
        columns = [TERMS.index(term) for term in FIT_TERMS[runtime][name]]
        units = np.array([[row[i] for i in columns] for row, _ in class_rows], dtype=float)
        counts = np.array([count for _, count in class_rows])
        weights = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        design = units * weights[:, None]
        column_scale = design.max(axis=0)
        column_scale[column_scale == 0] = 1.0  # a term that is 0 for every row stays 0
        solution = _nonnegative_least_squares(design / column_scale, counts * weights)
        coefficients = [0.0] * len(TERMS)
        for i, value in zip(columns, solution / column_scale):
            coefficients[i] = float(value)
        fitted[name] = tuple(coefficients)
    return fitted


def _nonnegative_least_squares(design, target):  # (np.ndarray, np.ndarray) -> np.ndarray
    """argmin ||design @ x - target|| subject to x >= 0, exactly, for a few columns.

    The optimum is the unconstrained least-squares solution on its own support, so trying every
    subset of columns (2**columns, at most 16 here) and keeping the best non-negative solution
    finds it. Where several solutions fit equally well (fewer rows than terms, as in some
    leave-one-model-out fits), the one of least norm (columns are scaled to [0, 1]) wins: the
    cost is spread over the correlated terms rather than put on one of them.
    """
    from itertools import combinations

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
    best_residual = min(residual for residual, _ in candidates)
    tolerance = 1e-9 * float(target @ target)
    tied = [solution for residual, solution in candidates if residual <= best_residual + tolerance]
    return min(tied, key=lambda solution: float(solution @ solution))


def fit_scale(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """The factor ``s`` minimizing the squared relative errors ``sum(((s * p - m) / m) ** 2)``."""
    ratios = [p / m for p, m in zip(predicted, measured)]
    return sum(ratios) / sum(r * r for r in ratios)


def read_measurements(csv_path: str | Path) -> list[tuple[Path, float]]:
    """Read ``tflite_path,measured_ms`` rows; paths are relative to the CSV file's folder.

    Raises ProfileError naming the file and line of a bad row (missing column, a latency
    that is not a positive number, a model file that does not exist).
    """
    path = Path(csv_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ProfileError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    missing = {"tflite_path", "measured_ms"} - set(reader.fieldnames or ())
    if missing:
        raise ProfileError(
            f"{path}: line 1: header must name the columns tflite_path,measured_ms (missing {', '.join(sorted(missing))})"
        )
    measurements = []
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        model = (row.get("tflite_path") or "").strip()
        measured_text = (row.get("measured_ms") or "").strip()
        if not model:
            raise ProfileError(f"{where}: empty tflite_path")
        try:
            measured_ms = float(measured_text)
        except ValueError:
            raise ProfileError(f"{where}: measured_ms '{measured_text}' is not a number") from None
        if not (math.isfinite(measured_ms) and measured_ms > 0):
            raise ProfileError(f"{where}: measured_ms must be > 0, got {measured_text}")
        model_path = (path.parent / model).resolve()
        if not model_path.is_file():
            raise ProfileError(f"{where}: model file {model_path} does not exist")
        measurements.append((model_path, measured_ms))
    if not measurements:
        raise ProfileError(f"{path}: no measurement rows")
    return measurements


def fit_profile(
    measurements: Sequence[tuple[str | Path, float]],
    board: Board,
    runtime: str = DEFAULT_RUNTIME,
    base: Profile | str | Path | None = None,
) -> Profile:
    """Calibrate a profile to ``board`` from whole-model latencies measured on it.

    Args:
        measurements: (``.tflite`` path, measured milliseconds per inference) pairs.
        board: the board the latencies were measured on (its clock converts cycles to ms).
        runtime: the runtime used for the measurements.
        base: the profile to scale (object or file); default: the packaged profile of the
            board's core and runtime.

    Returns:
        ``base`` with all coefficients multiplied by the fitted factor, and a provenance with
        the factor and each model's measured and predicted latency.
    """
    from mcunas.graph.tflite import read_tflite

    if not measurements:
        raise ProfileError("calibration needs at least one measurement")
    start = resolve_profile(board, runtime, base)
    cycles_per_ms = board.clock_mhz * 1000.0
    predicted = [start.graph_cycles(read_tflite(path)) / cycles_per_ms for path, _ in measurements]
    measured = [float(ms) for _, ms in measurements]
    scale = fit_scale(predicted, measured)
    rows = [
        {
            "model": Path(path).name,
            "measured_ms": round(ms, 4),
            "predicted_ms": round(p * scale, 4),
            "error_pct": round(100.0 * (p * scale / ms - 1.0), 2),
        }
        for (path, ms), p in zip(measurements, predicted)
    ]
    provenance = {
        "kind": "calibrated",
        "fitted_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "board": board.name,
        "clock_mhz": board.clock_mhz,
        "method": "one factor on all coefficients, least squares on relative errors",
        "scale": round(scale, 6),
        "base": {"core": start.core, "runtime": start.runtime, "provenance": start.provenance},
        "measurements": rows,
        "rms_error_pct": round(math.sqrt(sum(r["error_pct"] ** 2 for r in rows) / len(rows)), 2),
    }
    return start.scaled(scale, provenance)


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write a profile as JSON (atomically); :func:`mcunas.estimators.latency.load_profile` reads it."""
    write_json(path, profile.to_dict())
