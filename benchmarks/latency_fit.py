"""Rebuild every packaged latency profile from the data; print the fit's error tables (markdown).

    .venv/bin/python benchmarks/latency_fit.py [--data DIR] [--write]

Data (``../shared/reference-models``, see the READMEs there; nothing here is typed in by hand):

* executed Cortex-M4 instructions per TFLM op, CMSIS-NN and reference builds (QEMU):
  ``mlperf-tiny/cortex-m4-instruction-counts.json`` (4 MLPerf Tiny models) and
  ``latency/space-instruction-counts.json`` (16 models of the mcunas spaces, graphs from
  ``latency/space-archs/*.json`` through ``Space.graph``);
* ``latency/measurements.csv``: 12 published whole-model latencies on 6 boards.

Level 1 fits the instruction coefficients of every kernel class per library
(:func:`mcunas.estimators.instructions.fit_instructions`). Level 2 fits, on the measurements,
cycles per instruction (one per core group; Cortex-M4 and -M33 share one, scaled by their
CoreMark/MHz), the code bytes fetched from flash per instruction of the convolution kernels
past ST's 1 KB ART cache (only boards with such a cache identify it), and one kernel-vintage
factor for the 2020 kernels of MLPerf Tiny v0.5 (identified by the FC-only model against the
CNNs on the same board): least squares on relative errors. Reported: per-op instruction errors
per class (in-sample, leave-one-model-out), whole-model latency errors in-sample,
leave-one-model-out (LOMO: the model's instruction counts and all its measurements removed) and
leave-one-board-out (LOBO), interval coverage, the coefficients. ``--write`` writes
``mcunas/estimators/profiles/<core>-<runtime>.json`` for every core and runtime.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcunas.estimators.board import Board, load_board  # noqa: E402
from mcunas.estimators.calibrate import save_profile  # noqa: E402
from mcunas.estimators.instructions import (  # noqa: E402
    FETCH_CLASSES,
    complete_classes,
    fit_instructions,
    memcpy_tie,
    nonnegative_least_squares,
)
from mcunas.estimators.kernels import CLASS_TERMS, LIBRARIES, MEASURED_CLASSES, op_terms  # noqa: E402
from mcunas.estimators.latency import LOOP_CACHE_BYTES, ClassCost, Interval, Profile  # noqa: E402
from mcunas.graph.tflite import read_tflite  # noqa: E402
from mcunas.spaces import get_space, load_arch  # noqa: E402

BUILDS = {"cmsis-nn": "cmsis-nn", "reference": "reference"}  # instruction-count build -> library
BOARD_SLUGS = {
    "NUCLEO-L4R5ZI": "nucleo-l4r5zi",
    "NUCLEO-F446RE": "nucleo-f446re",
    "NUCLEO-F746ZG": "nucleo-f746zg",
    "EK-RA6M4": "ek-ra6m4",
    "EK-RA8D1": "ek-ra8d1",
    "ESP32-S3-DevKitC-1": "esp32-s3-devkitc-1",
}
# The instruction model that stands for a runtime's kernels: ESP-NN (no instruction data) is
# costed by the CMSIS-NN model, the closest SIMD library (same 1x1 / 3x3-depthwise fast paths).
RUNTIME_LIBRARY = {"tflm-cmsis-nn": "cmsis-nn", "tflm-reference": "reference", "tflm-esp-nn": "cmsis-nn"}
# CoreMark/MHz, Arm "Cortex-M processor comparison table", https://developer.arm.com/documentation/102787/latest
COREMARK_PER_MHZ = {"cortex-m0plus": 2.46, "cortex-m4": 3.42, "cortex-m7": 5.01, "cortex-m33": 4.02,
                    "cortex-m55": 4.2, "cortex-m85": 6.28}
COREMARK_SOURCE = "Arm Cortex-M processor comparison table, https://developer.arm.com/documentation/102787/latest"
# Core group of a measurement: Armv7E-M/Armv8-M mainline cores with the DSP extension run the
# same CMSIS-NN code paths on 3-stage pipelines; one parameter, scaled by CoreMark/MHz.
GROUPS = {("cortex-m4", "tflm-cmsis-nn"): "v7m", ("cortex-m33", "tflm-cmsis-nn"): "v7m",
          ("cortex-m7", "tflm-cmsis-nn"): "m7", ("cortex-m85", "tflm-cmsis-nn"): "m85",
          ("xtensa-lx7", "tflm-esp-nn"): "lx7-esp-nn", ("xtensa-lx7", "tflm-reference"): "lx7-reference"}
PARAMETERS = ("v7m", "fetch", "m7", "m85", "lx7-esp-nn", "lx7-reference")
OLD_VINTAGE = "2020"  # kernels older than the ones of 2021 get the fitted factor


def group_scale(core: str) -> float:
    """Cycles per instruction of ``core`` relative to the v7m group's parameter (the Cortex-M33)."""
    return COREMARK_PER_MHZ["cortex-m33"] / COREMARK_PER_MHZ[core] if core in ("cortex-m4", "cortex-m33") else 1.0


@dataclass
class Measurement:
    model: str
    board: Board
    runtime: str
    measured_ms: float
    vintage: str
    version: str
    source: str

    @property
    def key(self) -> str:
        return f"{self.model}@{self.board.name}/{self.runtime}"


def load_data(data: Path) -> tuple[dict, dict, list[Measurement]]:
    """Graphs by model, instruction counts by (library, model), the measurements."""
    graphs, counts = {}, {}
    files = [(data / "mlperf-tiny" / "cortex-m4-instruction-counts.json", None),
             (data / "latency" / "space-instruction-counts.json", data / "latency" / "space-archs")]
    for path, archs in files:
        for record in json.loads(path.read_text())["records"]:
            model = record["model"]
            if model not in graphs:
                if archs is None:
                    graphs[model] = read_tflite(data / "mlperf-tiny" / f"{model}.tflite")
                else:
                    arch = load_arch(archs / f"{model}.json")
                    graphs[model] = get_space(arch.space).graph(arch)
            if [op.kind for op in graphs[model].ops] != [op["tag"] for op in record["ops"]]:
                raise SystemExit(f"{model}: op kinds of the graph and of the instruction counts differ")
            counts[BUILDS[record["build"]], model] = [op["instructions"] for op in record["ops"]]
    measurements = []
    folder = data / "latency"
    with (folder / "measurements.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            model = Path(row["model_file"]).stem
            if model not in graphs:
                graphs[model] = read_tflite(folder / row["model_file"])
            year = re.search(r"\b(20\d\d)\b", row["runtime_version"])
            vintage = OLD_VINTAGE if year and int(year.group(1)) <= int(OLD_VINTAGE) else "current"
            measurements.append(Measurement(model, load_board(BOARD_SLUGS[row["board"]]), row["runtime"],
                                            float(row["measured_ms"]), vintage, row["runtime_version"], row["source"]))
    return graphs, counts, measurements


# ---- level 1: instructions -------------------------------------------------------------------

def fit_all(graphs: dict, counts: dict, models: list[str]) -> dict:
    """library -> class -> coefficients, fitted on ``models`` (RESHAPE tied to the memcpy rate)."""
    def samples(lib: str) -> list:
        return [(graphs[m], counts[lib, m]) for m in models if (lib, m) in counts]

    cmsis = fit_instructions(samples("cmsis-nn"), "cmsis-nn")
    tie = memcpy_tie(cmsis)
    return {lib: fit_instructions(samples(lib), lib, tie) for lib in LIBRARIES}


def predicted_instructions(table: dict, graph, op, library: str) -> float:
    terms = op_terms(graph, op, library)
    return sum(a * u for a, u in zip(table[terms.op_class], terms.units))


def instruction_errors(graphs: dict, counts: dict) -> tuple[dict, dict]:
    """Per class and library: per-op relative errors in-sample and LOMO; per model: whole-model errors."""
    models = sorted({m for _, m in counts})
    full = fit_all(graphs, counts, models)
    per_class: dict = {}
    per_model: dict = {}
    for model in models:
        partial = fit_all(graphs, counts, [m for m in models if m != model])
        for lib in LIBRARIES:
            if (lib, model) not in counts:
                continue
            graph = graphs[model]
            tables = {lib: complete_classes(full, lib), "lomo": complete_classes(partial, lib)}
            total_in = total_lomo = 0.0
            for op, true in zip(graph.ops, counts[lib, model]):
                name = op_terms(graph, op, lib).op_class
                p_in = predicted_instructions({k: v[0] for k, v in tables[lib].items()}, graph, op, lib)
                p_lomo = predicted_instructions({k: v[0] for k, v in tables["lomo"].items()}, graph, op, lib)
                per_class.setdefault((lib, name), []).append((true, p_in, p_lomo, model))
                total_in += p_in
                total_lomo += p_lomo
            true_total = sum(counts[lib, model])
            per_model[lib, model] = (total_in / true_total - 1, total_lomo / true_total - 1)
    return per_class, per_model


# ---- level 2: cycles ---------------------------------------------------------------------------

def code_and_data_cycles_per_byte(board: Board) -> tuple[float, float]:
    """(s_code, s_data): flash cycles per byte for code fetches past a small cache, and weights."""
    memory = board.memory
    per_byte = memory.flash_cycles_per_byte
    code = per_byte if memory.code_in == "flash" and memory.instruction_cache_bytes < LOOP_CACHE_BYTES else 0.0
    return code, (per_byte if memory.weights_in == "flash" else 0.0)


def cycle_features(measurement: Measurement, graph, tables: dict) -> tuple[float, float, float]:
    """(A, B, D): instructions, instructions x s_code of the fetch classes, weight-stall cycles."""
    library = RUNTIME_LIBRARY[measurement.runtime]
    table = {k: v[0] for k, v in complete_classes(tables, library).items()}
    code, data = code_and_data_cycles_per_byte(measurement.board)
    dcache = measurement.board.memory.data_cache_bytes
    a = b = d = 0.0
    for op in graph.ops:
        terms = op_terms(graph, op, library)
        instructions = sum(x * u for x, u in zip(table[terms.op_class], terms.units))
        a += instructions
        if terms.op_class in FETCH_CLASSES:
            b += instructions * code
        if terms.weight_bytes:
            d += data * terms.weight_bytes * (1 if terms.weight_bytes <= dcache else terms.weight_passes)
    return a, b, d


def measured_cycles(m: Measurement) -> float:
    return m.measured_ms * m.board.clock_mhz * 1000.0


def _solve(rows: list, vintage: float) -> tuple[dict, float]:
    """NNLS of the linear parameters for a fixed 2020-vintage factor; (parameters, residual)."""
    design, target = [], []
    for m, (a, b, d) in rows:
        v = vintage if m.vintage == OLD_VINTAGE else 1.0
        y = measured_cycles(m)
        line = [0.0] * len(PARAMETERS)
        line[PARAMETERS.index(GROUPS[m.board.core, m.runtime])] = v * group_scale(m.board.core) * a / y
        line[PARAMETERS.index("fetch")] = v * b / y
        design.append(line)
        target.append((y - v * d) / y)
    design, target = np.array(design), np.array(target)
    scale = np.abs(design).max(axis=0)
    identified = scale > 0
    scale[~identified] = 1.0
    solution = nonnegative_least_squares(design / scale, target) / scale
    residual = target - design @ solution
    params = {name: (float(value) if ok else None) for name, value, ok in zip(PARAMETERS, solution, identified)}
    return params, float(residual @ residual)


def fit_cycles(rows: list) -> dict:
    """Cycle parameters (None where not identified) and the vintage factor, by golden-section search."""
    if not any(m.vintage == OLD_VINTAGE for m, _ in rows):
        params, _ = _solve(rows, 1.0)
        return {**params, "vintage": None}
    low, high = 0.5, 2.0
    ratio = (math.sqrt(5) - 1) / 2
    x1, x2 = high - ratio * (high - low), low + ratio * (high - low)
    f1, f2 = _solve(rows, x1)[1], _solve(rows, x2)[1]
    for _ in range(60):
        if f1 < f2:
            high, x2, f2 = x2, x1, f1
            x1 = high - ratio * (high - low)
            f1 = _solve(rows, x1)[1]
        else:
            low, x1, f1 = x1, x2, f2
            x2 = low + ratio * (high - low)
            f2 = _solve(rows, x2)[1]
    vintage = (low + high) / 2
    params, _ = _solve(rows, vintage)
    return {**params, "vintage": vintage}


def predict_cycles(m: Measurement, features: tuple[float, float, float], params: dict) -> float | None:
    c = params.get(GROUPS[m.board.core, m.runtime])
    a, b, d = features
    if c is None or (b and params["fetch"] is None):
        return None
    v = (params["vintage"] or 1.0) if m.vintage == OLD_VINTAGE else 1.0
    return v * (c * group_scale(m.board.core) * a + (params["fetch"] or 0.0) * b + d)


def evaluate(graphs: dict, counts: dict, measurements: list[Measurement]) -> dict:
    """The full fit and every measurement's in-sample, LOMO and LOBO relative errors."""
    models = sorted({m for _, m in counts})
    full = fit_all(graphs, counts, models)
    features = {m.key: cycle_features(m, graphs[m.model], full) for m in measurements}
    params = fit_cycles([(m, features[m.key]) for m in measurements])
    rows = []
    for m in measurements:
        y = measured_cycles(m)
        row = {"m": m, "in": predict_cycles(m, features[m.key], params) / y - 1}
        # LOMO: the model's instruction counts and every measurement of it removed
        partial = fit_all(graphs, counts, [x for x in models if x != m.model])
        partial_features = {x.key: cycle_features(x, graphs[x.model], partial) for x in measurements}
        rest = [(x, partial_features[x.key]) for x in measurements if x.model != m.model]
        p = predict_cycles(m, partial_features[m.key], fit_cycles(rest))
        row["lomo"] = None if p is None else p / y - 1
        rest = [(x, features[x.key]) for x in measurements if x.board.name != m.board.name]
        p = predict_cycles(m, features[m.key], fit_cycles(rest))
        row["lobo"] = None if p is None else p / y - 1
        rows.append(row)
    return {"tables": full, "params": params, "rows": rows}


# ---- intervals -------------------------------------------------------------------------------

def loo_errors(row: dict) -> list[float]:
    """A measurement's leave-one-out errors: LOMO and LOBO, where identifiable."""
    return [row[key] for key in ("lomo", "lobo") if row[key] is not None]


def interval_of(rows: list, core: str, runtime: str, exclude: str | None = None) -> Interval:
    """The profile interval ``[p / e^R, p * e^R]``, ``R`` the largest ``|ln(1 + r)|`` over the
    leave-one-out errors (LOMO and LOBO) of the core's measurements if at least 3 of them have
    one, else of all measurements (pooled); derived profiles (no measurement of the core and
    runtime) get the pooled ``R`` doubled."""
    usable = [r for r in rows if r["m"].key != exclude and loo_errors(r)]
    own_rows = [r for r in usable if (r["m"].board.core, r["m"].runtime) == (core, runtime)]
    own = [e for r in own_rows for e in loo_errors(r)]
    pooled = [e for r in usable for e in loo_errors(r)]
    measured = any((r["m"].board.core, r["m"].runtime) == (core, runtime) for r in rows)
    if len(own_rows) >= 3:
        values, factor, basis = own, 1.0, f"{len(own)} leave-one-out errors of the {core}/{runtime} measurements"
    elif measured:
        values, factor, basis = pooled, 1.0, f"{len(pooled)} leave-one-out errors of all measurements (pooled)"
    else:
        values, factor, basis = pooled, 2.0, (f"no measurement of {core}/{runtime}: {len(pooled)} leave-one-out "
                                              "errors of all measurements, range doubled")
    spread = factor * max(abs(math.log1p(v)) for v in values)
    return Interval(math.expm1(-spread), math.expm1(spread), f"largest |log(1 + error)| of {basis}")


def coverage(rows: list) -> list[tuple[Measurement, float, Interval, bool]]:
    """Each LOMO case (LOBO where LOMO is not identifiable) against the interval built without it."""
    result = []
    for row in rows:
        errors = loo_errors(row)
        if not errors:
            continue
        m = row["m"]
        interval = interval_of(rows, m.board.core, m.runtime, exclude=m.key)
        r = errors[0]
        result.append((m, r, interval, interval.r_min <= r <= interval.r_max))
    return result


# ---- profiles --------------------------------------------------------------------------------

CORES_RUNTIMES = [(core, runtime) for core in ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33",
                                                 "cortex-m55", "cortex-m85") for runtime in ("tflm-cmsis-nn", "tflm-reference")]
CORES_RUNTIMES += [("xtensa-lx7", "tflm-esp-nn"), ("xtensa-lx7", "tflm-reference")]
# ARMv6-M has no DSP extension: CMSIS-NN compiles its scalar paths, one MAC per multiply instead
# of two per SMLAD, and unpacks without SXTB16 (assumption: twice the M4 instructions per MAC).
M0_MAC_FACTOR = 2.0


def derivation(core: str, runtime: str, params: dict) -> tuple[float, str]:
    """(cycles per instruction, how it was obtained) of a core and runtime."""
    cm = COREMARK_PER_MHZ
    v7m = params["v7m"]
    m4 = v7m * group_scale("cortex-m4")
    fitted = GROUPS.get((core, runtime))
    if fitted == "v7m":
        return v7m * group_scale(core), (f"fitted: the Cortex-M33 parameter {v7m:.4f} (EK-RA6M4) x CoreMark/MHz "
                                         f"{cm['cortex-m33']}/{cm[core]}, jointly with the code-fetch term "
                                         "(NUCLEO-L4R5ZI, NUCLEO-F446RE)")
    if fitted is not None:
        return params[fitted], f"fitted to the published latencies on this core ({fitted})"
    if runtime == "tflm-reference" and core in ("cortex-m4", "cortex-m33", "cortex-m7"):
        base = params["m7"] if core == "cortex-m7" else v7m * group_scale(core)
        return base, ("assumption: the portable reference kernels run at the cycles per instruction fitted for "
                      "CMSIS-NN on this core (no reference-kernel latency published for it)")
    if core == "cortex-m55":
        if runtime == "tflm-cmsis-nn":
            return params["m85"] * cm["cortex-m85"] / cm["cortex-m55"], (
                f"the Cortex-M85 fit (same Helium kernels) x CoreMark/MHz {cm['cortex-m85']}/{cm['cortex-m55']} "
                "(assumption: Helium loops scale like CoreMark)")
        return m4 * cm["cortex-m4"] / cm[core], f"Cortex-M4 fit x CoreMark/MHz {cm['cortex-m4']}/{cm[core]} (scalar C)"
    if core == "cortex-m85":  # reference
        return m4 * cm["cortex-m4"] / cm[core], f"Cortex-M4 fit x CoreMark/MHz {cm['cortex-m4']}/{cm[core]} (scalar C)"
    if core == "cortex-m0plus":
        return m4 * cm["cortex-m4"] / cm[core], (
            f"Cortex-M4 fit x CoreMark/MHz {cm['cortex-m4']}/{cm[core]} (ARMv6-M, 2-stage pipeline)"
            + (f"; CMSIS-NN instructions per MAC x{M0_MAC_FACTOR} (no DSP extension: scalar paths)"
               if runtime == "tflm-cmsis-nn" else ""))
    raise ValueError(f"no derivation for {core}/{runtime}")


def build_profiles(result: dict, per_class: dict, data_note: dict) -> list[Profile]:
    params, rows, tables = result["params"], result["rows"], result["tables"]
    date = datetime.now(timezone.utc).date().isoformat()
    profiles = []
    for core, runtime in CORES_RUNTIMES:
        library = RUNTIME_LIBRARY[runtime]
        cpi, how = derivation(core, runtime, params)
        classes = {}
        for name, (values, assumed) in complete_classes(tables, library).items():
            if core == "cortex-m0plus" and runtime == "tflm-cmsis-nn" and "mac" in CLASS_TERMS[library][name]:
                index = CLASS_TERMS[library][name].index("mac")
                values = tuple(v * M0_MAC_FACTOR if i == index else v for i, v in enumerate(values))
            fetch = params["fetch"] if name in FETCH_CLASSES else 0.0
            classes[name] = ClassCost(tuple(round(v, 6) for v in values), round(fetch, 6), 1.0, assumed)
        residuals = [
            {"measurement": r["m"].key, "measured_ms": r["m"].measured_ms,
             "error_pct": round(100 * r["in"], 2),
             "lomo_error_pct": None if r["lomo"] is None else round(100 * r["lomo"], 2),
             "lobo_error_pct": None if r["lobo"] is None else round(100 * r["lobo"], 2)}
            for r in rows if (r["m"].board.core, r["m"].runtime) == (core, runtime)
        ]
        provenance = {
            "kind": "packaged",
            "fitted_utc": date,
            "script": "benchmarks/latency_fit.py",
            "data": data_note,
            "instruction_model": f"library {library}: Cortex-M4 instructions per term, fitted per class "
                                 "(non-negative least squares on relative errors) to the executed-instruction counts",
            "cycles_per_instruction": how,
            "fetch_bytes_per_instruction": (
                f"{params['fetch']:.4f} code bytes per instruction of the convolution classes fetched from flash "
                f"past an instruction cache smaller than {LOOP_CACHE_BYTES} bytes, fitted on the ART boards "
                "NUCLEO-L4R5ZI and NUCLEO-F446RE; 0 for single-loop kernels"),
            "kernel_vintage_factor_2020": round(params["vintage"], 6),
            "kernel_vintage": (
                f"MLPerf Tiny v0.5 (TFLM v2.3.1, 2020 CMSIS-NN) measurements scaled by the fitted factor "
                f"{params['vintage']:.4f}; 2021 and later kernels taken as today's (their differences are "
                "absorbed by the per-core fits); estimates are for today's kernels"),
            "coremark_per_mhz": {"values": COREMARK_PER_MHZ, "source": COREMARK_SOURCE},
            "assumed_classes": sorted(name for name, cost in classes.items() if cost.assumed),
            "residuals": residuals,
        }
        interval = interval_of(rows, core, runtime)
        profiles.append(Profile(core, runtime, library, round(cpi, 6), classes, interval, "", provenance))
    return profiles


# ---- report ----------------------------------------------------------------------------------

def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def print_report(per_class: dict, per_model: dict, result: dict, cover: list) -> None:
    print("### Per-op instructions, by class (MAPE over ops; in-sample / leave-one-model-out)\n")
    print("| library | class | ops | models | in-sample MAPE | in-sample max | LOMO MAPE | LOMO max |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (lib, name), values in sorted(per_class.items()):
        e_in = [abs(p / t - 1) for t, p, _, _ in values]
        e_lo = [abs(q / t - 1) for t, _, q, _ in values]
        n_models = len({m for *_, m in values})
        print(f"| {lib} | {name} | {len(values)} | {n_models} | {100 * np.mean(e_in):.1f}% | {100 * max(e_in):.1f}% "
              f"| {100 * np.mean(e_lo):.1f}% | {100 * max(e_lo):.1f}% |")
    print("\n### Whole-model instructions (in-sample / LOMO)\n")
    for lib in LIBRARIES:
        values = [v for (l, _), v in per_model.items() if l == lib]
        e_in = [abs(a) for a, _ in values]
        e_lo = [abs(b) for _, b in values]
        print(f"- {lib}: {len(values)} models, in-sample MAPE {100 * np.mean(e_in):.2f}% (max {100 * max(e_in):.2f}%), "
              f"LOMO MAPE {100 * np.mean(e_lo):.2f}% (max {100 * max(e_lo):.2f}%)")
    params = result["params"]
    print("\n### Cycle parameters\n")
    for name in PARAMETERS:
        print(f"- {name}: {params[name]:.4f}")
    print(f"- 2020 kernel vintage factor: {params['vintage']:.4f}")
    print("\n### Whole-model latency, relative error (predicted / measured - 1)\n")
    print("| model | board | runtime | measured ms | in-sample | LOMO | LOBO |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for r in result["rows"]:
        m = r["m"]
        print(f"| {m.model} | {m.board.name} | {m.runtime} | {m.measured_ms:g} | {pct(r['in'])} | {pct(r['lomo'])} "
              f"| {pct(r['lobo'])} |")
    print("\n### Per board (MAPE / max |error|)\n")
    print("| board | core | n | in-sample | LOMO | LOBO |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for board in dict.fromkeys(r["m"].board.name for r in result["rows"]):
        rs = [r for r in result["rows"] if r["m"].board.name == board]

        def agg(key: str) -> str:
            values = [abs(r[key]) for r in rs if r[key] is not None]
            return "n/a" if not values else f"{100 * np.mean(values):.1f}% / {100 * max(values):.1f}%"

        print(f"| {board} | {rs[0]['m'].board.core} | {len(rs)} | {agg('in')} | {agg('lomo')} | {agg('lobo')} |")
    m4 = [r for r in result["rows"] if r["m"].board.core == "cortex-m4"]
    lomo = [abs(r["lomo"]) for r in m4 if r["lomo"] is not None]
    print(f"\nCortex-M4 LOMO MAPE: {100 * np.mean(lomo):.1f}% over {len(lomo)} measurements")
    inside = sum(ok for *_, ok in cover)
    print(f"\n### Interval coverage: {inside}/{len(cover)} = {100 * inside / len(cover):.0f}% of the leave-one-out cases\n")
    print("| measurement | LOO error | interval (r_min, r_max) | basis | inside |")
    print("| --- | ---: | --- | --- | --- |")
    for m, r, interval, ok in cover:
        print(f"| {m.key} | {pct(r)} | {pct(interval.r_min)}, {pct(interval.r_max)} | {interval.basis} | {'yes' if ok else 'no'} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "reference-models")
    parser.add_argument("--write", action="store_true", help="write the packaged profiles")
    args = parser.parse_args(argv)
    graphs, counts, measurements = load_data(args.data)
    per_class, per_model = instruction_errors(graphs, counts)
    result = evaluate(graphs, counts, measurements)
    cover = coverage(result["rows"])
    print_report(per_class, per_model, result, cover)
    if args.write:
        data_note = {
            "instructions": "shared/reference-models/mlperf-tiny/cortex-m4-instruction-counts.json, "
                            "shared/reference-models/latency/space-instruction-counts.json (TFLM 90b983c2, "
                            "CMSIS-NN v7.0.0-43, Cortex-M4 in QEMU mps2-an386; 20 models x 2 builds)",
            "latencies": "shared/reference-models/latency/measurements.csv (12 published latencies, 6 boards)",
        }
        folder = REPO / "mcunas" / "estimators" / "profiles"
        for old in folder.glob("*.json"):
            old.unlink()
        for profile in build_profiles(result, per_class, data_note):
            path = folder / f"{profile.core}-{profile.runtime}.json"
            save_profile(profile, path)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
