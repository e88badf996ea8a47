"""Calibrating a latency profile to a real board.

Two kinds of measurements, both turned into factors on the profile's cycles (the instruction
model stays; what a board adds -- pipeline, wait states, caches -- is what the factors absorb):

* whole-model latencies (:func:`read_measurements`: CSV ``tflite_path,measured_ms``): one factor
  for all classes, least squares on relative errors (:func:`fit_scale`); one model reproduces its
  latency exactly;
* per-op tick logs as TFLM's ``MicroProfiler`` prints them (:func:`read_tick_log`: ``LogCsv``
  rows ``event,TAG,ticks`` or ``LogTicksPerTagCsv`` rows ``TAG, ticks``; the bundle's
  ``profile_main.cc`` prints ``LogCsv`` with DWT cycle counts): one factor per kernel class that
  the log covers (ratio of measured to predicted cycles summed over the class's ops, so each
  class's total and the model's total are reproduced exactly), the whole-model factor for the
  classes it does not cover. With ``LogTicksPerTagCsv`` the tags are op kinds: one factor per kind.

:func:`fit_profile` runs either, :func:`save_profile` writes the result (``mcunas estimate
calibrate``). The calibrated profile names its board: it is only used for that board.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mcunas.errors import ProfileError
from mcunas.estimators.latency import Profile, resolve_profile
from mcunas.io import read_user_text, write_json

if TYPE_CHECKING:
    from mcunas.estimators.board import Board
    from mcunas.graph.ir import Graph

_LOG_CSV_ROW = re.compile(r"^\s*(\d+)\s*,\s*([A-Za-z0-9_]+)\s*,\s*(\d+)\s*(?:,.*)?$")
_PER_TAG_ROW = re.compile(r"^\s*([A-Za-z0-9_]+)\s*,\s*(\d+)\s*$")
_LOG_CSV_HEADER = '"Event","Tag","Ticks"'
_PER_TAG_HEADER = '"Unique Tag","Total ticks across all events with that tag."'


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
    reader = csv.DictReader(read_user_text(path, ProfileError, "measurements file").splitlines(keepends=True))
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


def read_tick_log(log_path: str | Path) -> tuple[str, list[tuple[str, int]]]:
    """Per-op ticks from a MicroProfiler log: ``("per_op", [(tag, ticks), ...])`` for ``LogCsv``,
    ``("per_tag", [(tag, total ticks), ...])`` for ``LogTicksPerTagCsv``.

    Lines before the header and lines that are not rows (other serial output) are skipped.
    ``LogCsv`` rows of several invokes (event numbers restarting, or the tags repeating after
    the last op) are kept in order; :func:`fit_profile` averages them per op. Raises
    ProfileError when the file has neither header or no rows after it.
    """
    path = Path(log_path)
    lines = read_user_text(path, ProfileError, "MicroProfiler log").splitlines()
    headers = {_LOG_CSV_HEADER: ("per_op", _LOG_CSV_ROW), _PER_TAG_HEADER: ("per_tag", _PER_TAG_ROW)}
    for start, line in enumerate(lines):
        found = next((value for header, value in headers.items() if line.strip().startswith(header)), None)
        if found is not None:
            break
    else:
        raise ProfileError(f"{path}: no MicroProfiler header ({_LOG_CSV_HEADER} of LogCsv or "
                           f"{_PER_TAG_HEADER} of LogTicksPerTagCsv)")
    kind, pattern = found
    rows = []
    for line in lines[start + 1:]:
        match = pattern.match(line)
        if match is None:
            continue
        tag, ticks = (match.group(2), match.group(3)) if kind == "per_op" else (match.group(1), match.group(2))
        rows.append((tag, int(ticks)))
    if not rows:
        raise ProfileError(f"{path}: no tick rows after the header at line {start + 1}")
    return kind, rows


def _per_op_ticks(graph: Graph, rows: list[tuple[str, int]], source: str) -> list[float]:
    """The average ticks of each op of ``graph`` over the invokes in a LogCsv log."""
    kinds = [op.kind for op in graph.ops]
    if len(rows) % len(kinds):
        raise ProfileError(f"{source}: {len(rows)} LogCsv rows are not a whole number of invokes of the "
                           f"{len(kinds)} ops of {graph.name}")
    runs = len(rows) // len(kinds)
    totals = [0.0] * len(kinds)
    for index, (tag, ticks) in enumerate(rows):
        position = index % len(kinds)
        if tag != kinds[position]:
            raise ProfileError(f"{source}: row {index + 1} is tag {tag}, but op {position} of {graph.name} is {kinds[position]}")
        totals[position] += ticks / runs
    return totals


def fit_profile(
    measurements: Sequence[tuple[str | Path, float]],
    board: Board,
    runtime: str,
    base: Profile | str | Path | None = None,
    tick_log: str | Path | None = None,
    tick_model: str | Path | None = None,
    ticks_per_second: float | None = None,
) -> Profile:
    """Calibrate a profile to ``board`` from latencies and/or a per-op tick log measured on it.

    Args:
        measurements: (``.tflite`` path, measured milliseconds per inference) pairs; may be
            empty when a tick log is given.
        board: the board the measurements were taken on (its clock converts ms to cycles).
        runtime: the runtime used for the measurements.
        base: the profile to calibrate (object or file); default: the packaged profile of the
            board's core and runtime.
        tick_log: a MicroProfiler log (see :func:`read_tick_log`) of one invoke or more of
            ``tick_model``.
        tick_model: the ``.tflite`` the tick log was taken with.
        ticks_per_second: the profiler's tick rate; default: ticks are CPU cycles (as the
            bundle's ``profile_main.cc`` prints them).

    Returns:
        ``base`` with per-class factors, and a provenance with the factors and each
        measurement's measured and predicted figures.
    """
    from mcunas.graph.tflite import read_tflite

    if not measurements and tick_log is None:
        raise ProfileError("calibration needs at least one measurement or a tick log")
    if (tick_log is None) != (tick_model is None):
        raise ProfileError("a tick log needs the model it was taken with (and the model a tick log)")
    start = resolve_profile(board, runtime, base)
    cycles_per_ms = board.clock_mhz * 1000.0
    graphs = [(Path(path), read_tflite(path)) for path, _ in measurements]
    predicted = [start.graph_cycles(graph, board) / cycles_per_ms for _, graph in graphs]
    measured = [float(ms) for _, ms in measurements]
    scales: dict[str, float] = {}
    log_rows: list[dict] = []
    if tick_log is not None:
        graph = read_tflite(tick_model)
        kind, ticks = read_tick_log(tick_log)
        to_cycles = 1.0 if ticks_per_second is None else board.clock_mhz * 1e6 / ticks_per_second
        per_op = start.op_cycles(graph, board)
        if kind == "per_op":
            op_measured = [t * to_cycles for t in _per_op_ticks(graph, ticks, str(tick_log))]
            groups = [name for name, _ in per_op]
        else:
            known = {op.kind for op in graph.ops}
            unknown = sorted({tag for tag, _ in ticks} - known)
            if unknown:
                raise ProfileError(f"{tick_log}: tags {unknown} are not op kinds of {graph.name} ({', '.join(sorted(known))})")
            by_kind = {tag: t * to_cycles for tag, t in ticks}
            groups = [op.kind for op in graph.ops]
            counts = {k: groups.count(k) for k in by_kind}
            op_measured = [by_kind[k] / counts[k] for k in groups]  # only sums per kind are used
        sums: dict[str, list[float]] = {}
        classes_of: dict[str, set[str]] = {}
        for group, (name, cycles), truth in zip(groups, per_op, op_measured):
            entry = sums.setdefault(group, [0.0, 0.0])
            entry[0] += cycles
            entry[1] += truth
            classes_of.setdefault(group, set()).add(name)
        for group, (p, m) in sums.items():
            factor = m / p if p > 0 else 1.0
            for name in classes_of[group]:
                scales[name] = factor
            log_rows.append({"group": group, "measured_cycles": round(m), "predicted_cycles": round(p),
                             "factor": round(factor, 6)})
        predicted.append(sum(c for _, c in per_op) / cycles_per_ms)
        measured.append(sum(op_measured) / cycles_per_ms)
        graphs.append((Path(tick_model), graph))
    overall = fit_scale(predicted, measured)
    if tick_log is None:
        scales = {name: overall for name in start.classes}
    else:
        scales = {name: scales.get(name, overall) for name in start.classes}
    calibrated = start.with_scales(scales, board.name, {})
    rows = []
    for (path, graph), ms in zip(graphs, measured):
        p = calibrated.graph_cycles(graph, board) / cycles_per_ms
        rows.append({"model": path.name, "measured_ms": round(ms, 4), "predicted_ms": round(p, 4),
                     "error_pct": round(100.0 * (p / ms - 1.0), 2)})
    provenance = {
        "kind": "calibrated",
        "fitted_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "board": board.name,
        "clock_mhz": board.clock_mhz,
        "method": ("one factor on all classes, least squares on relative errors" if tick_log is None else
                   "per-class factors = measured / predicted cycles of the class's ops in the tick log; the "
                   "whole-model factor for classes without ticks"),
        "scale": round(overall, 6),
        "class_scales": {name: round(value, 6) for name, value in sorted(scales.items()) if value != 1.0},
        "tick_log": None if tick_log is None else {"file": Path(tick_log).name, "groups": log_rows},
        "base": {"core": start.core, "runtime": start.runtime, "board": start.board or None,
                 "provenance": start.provenance},
        "measurements": rows,
        "rms_error_pct": round(math.sqrt(sum(r["error_pct"] ** 2 for r in rows) / len(rows)), 2),
    }
    return Profile(calibrated.core, calibrated.runtime, calibrated.library, calibrated.cycles_per_instruction,
                   calibrated.classes, calibrated.interval, board.name, provenance)


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write a profile as JSON (atomically); :func:`mcunas.estimators.latency.load_profile` reads it."""
    write_json(path, profile.to_dict())
