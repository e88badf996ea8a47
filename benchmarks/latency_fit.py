"""Fit the packaged latency profiles from the MLPerf Tiny data; print coefficients and errors.

    .venv/bin/python benchmarks/latency_fit.py [--data DIR] [--write]

Data (``../shared/reference-models/mlperf-tiny``, see its README.md):

1. executed Cortex-M4 instructions per TFLM op for 4 int8 models and 2 kernel builds (QEMU):
   per-op cost coefficients in *instructions* per MAC / element / op, by op class
   (:func:`mcunas.estimators.calibrate.fit_op_costs`);
2. the published MLPerf Tiny v0.5 latencies on NUCLEO-L4R5ZI (Cortex-M4 at 120 MHz, TFLM with
   CMSIS-NN): one cycles-per-instruction factor, so that predicted milliseconds match.

Reported: the coefficients, the in-sample error and the leave-one-model-out (LOMO) error per
model (both fits redone without the model, then its latency predicted). ``--write`` writes
``mcunas/estimators/profiles/<core>-<runtime>.json`` for every core family, the other cores
derived from the Cortex-M4 fit with the relative factors in :data:`CORE_FACTORS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcunas.estimators.calibrate import fit_op_costs, fit_scale, save_profile  # noqa: E402
from mcunas.estimators.latency import CLASSES, TERMS, Profile  # noqa: E402
from mcunas.graph.tflite import read_tflite  # noqa: E402

MODELS = ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")
BUILDS = {"tflm-cmsis-nn": "cmsis-nn", "tflm-reference": "reference"}

# MLPerf Tiny v0.5 closed/reference, NUCLEO-L4R5ZI, TFLM v2.3.1 TAGS=cmsis-nn: 1000 / median
# throughput (mlcommons/tiny_results_v0.5, results/Nucleo-L4R5ZI/<task>/performance/results.txt).
PUBLISHED_MS = {"ad01_int8": 10.05, "kws_ref_model": 181.9, "pretrainedResnet_quant": 704.2, "vww_96_int8": 600.6}
PUBLISHED_CLOCK_MHZ = 120.0
PUBLISHED_SOURCE = "mlcommons/tiny_results_v0.5 closed/reference Nucleo-L4R5ZI (TFLM v2.3.1, CMSIS-NN, 120 MHz)"

# CoreMark/MHz as published by Arm ("Arm Cortex-M processor comparison table",
# https://developer.arm.com/documentation/102787/latest): a measure of cycles per unit of
# plain C work relative to the Cortex-M4.
COREMARK_PER_MHZ = {"cortex-m0plus": 2.46, "cortex-m4": 3.42, "cortex-m7": 5.01, "cortex-m33": 4.02}
COREMARK_SOURCE = "Arm Cortex-M processor comparison table, https://developer.arm.com/documentation/102787/latest"
# MCUNet (mit-han-lab/tinyengine README): on STM32H743 (Cortex-M7, 480 MHz) its int8 models ran
# about 11x faster with CMSIS-NN than with TFLM reference kernels (mcunet-vww1 1120 vs 97 ms).
M7_REFERENCE_OVER_CMSIS = 11.0
M7_RATIO_PROXY = "vww_96_int8"  # a MobileNet of the MCUNet-VWW family, to turn 11x into a factor


def load_data(data_dir: Path) -> tuple[dict, dict]:
    """Graphs by model, and per-op instruction counts by (runtime, model)."""
    graphs = {m: read_tflite(data_dir / f"{m}.tflite") for m in MODELS}
    records = json.loads((data_dir / "cortex-m4-instruction-counts.json").read_text())["records"]
    counts = {}
    for record in records:
        runtime = next(r for r, b in BUILDS.items() if b == record["build"])
        ops = record["ops"]
        graph = graphs[record["model"]]
        kinds = [op.kind for op in graph.ops]
        if kinds != [op["tag"] for op in ops]:
            raise SystemExit(f"{record['model']}: op kinds of the file and of the instruction counts differ")
        counts[runtime, record["model"]] = [op["instructions"] for op in ops]
    return graphs, counts


def fit_instructions(graphs: dict, counts: dict, models: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Instruction coefficients per runtime (all classes), and the assumptions used to fill gaps."""
    fitted = {r: fit_op_costs([(graphs[m], counts[r, m]) for m in models], r) for r in BUILDS}
    notes = []
    reference = fitted["tflm-reference"]
    for runtime, table in fitted.items():
        if "mean" not in table and "pool" in reference:
            table["mean"] = reference["pool"]
        if "pad" not in table and "pool" in reference and "reshape" in reference:
            per_element = reference["pool"][TERMS.index("per_input_element")]
            table["pad"] = _coefficients(per_op=reference["reshape"][0], per_output_element=per_element)
        if "other" not in table and "add" in table and "reshape" in reference:
            per_element = table["add"][TERMS.index("per_output_element")]
            table["other"] = _coefficients(per_op=reference["reshape"][0], per_output_element=per_element)
        missing = [c for c in CLASSES if c not in table]
        for name in missing:  # only in LOMO fits: a class seen in one model only
            table[name] = fitted["tflm-reference"].get(name) or _coefficients()
    notes.append("MEAN (no MEAN in the data): TFLM's portable MEAN kernel (CMSIS-NN has none) costed as the "
                 "reference AVERAGE_POOL_2D fit per input/output element")
    notes.append("PAD (no PAD in the data): per op as RESHAPE, per output element as one reference pooling "
                 "input element (a load, a store and loop bookkeeping)")
    notes.append("other op kinds: per output element as ADD (an element-wise op with requantization), per op "
                 "as RESHAPE (the smallest measured op: the interpreter's dispatch cost)")
    notes.append("DEPTHWISE_CONV_2D: only 3x3 kernels in the data; other kernel sizes scale with MACs")
    return fitted, notes


def _coefficients(**values: float) -> tuple[float, ...]:
    return tuple(float(values.get(term, 0.0)) for term in TERMS)


def predicted_instructions(table: dict, graph) -> float:
    return Profile("fit", "tflm-cmsis-nn", table).graph_cycles(graph)


def cycles_per_instruction(tables: dict, graphs: dict, models: tuple[str, ...]) -> float:
    """CPI so that the CMSIS-NN instruction model matches the published milliseconds."""
    cycles_per_ms = PUBLISHED_CLOCK_MHZ * 1000.0
    predicted = [predicted_instructions(tables["tflm-cmsis-nn"], graphs[m]) / cycles_per_ms for m in models]
    return fit_scale(predicted, [PUBLISHED_MS[m] for m in models])


def evaluate(graphs: dict, counts: dict) -> dict:
    """Full fit, in-sample and LOMO errors (instructions and milliseconds)."""
    tables, notes = fit_instructions(graphs, counts, MODELS)
    cpi = cycles_per_instruction(tables, graphs, MODELS)
    rows = []
    for model in MODELS:
        others = tuple(m for m in MODELS if m != model)
        lomo_tables, _ = fit_instructions(graphs, counts, others)
        lomo_cpi = cycles_per_instruction(lomo_tables, graphs, others)
        row = {"model": model, "published_ms": PUBLISHED_MS[model]}
        for runtime in BUILDS:
            true = sum(counts[runtime, model])
            row[f"instr_{runtime}"] = true
            row[f"instr_err_{runtime}"] = predicted_instructions(tables[runtime], graphs[model]) / true - 1
            row[f"instr_lomo_err_{runtime}"] = predicted_instructions(lomo_tables[runtime], graphs[model]) / true - 1
        instructions = predicted_instructions(tables["tflm-cmsis-nn"], graphs[model])
        lomo_instructions = predicted_instructions(lomo_tables["tflm-cmsis-nn"], graphs[model])
        row["predicted_ms"] = cpi * instructions / (PUBLISHED_CLOCK_MHZ * 1000.0)
        row["lomo_ms"] = lomo_cpi * lomo_instructions / (PUBLISHED_CLOCK_MHZ * 1000.0)
        row["lomo_cpi"] = lomo_cpi
        rows.append(row)
    return {"tables": tables, "notes": notes, "cpi": cpi, "rows": rows}


def derived_profiles(result: dict, graphs: dict) -> list[Profile]:
    """Profiles (cycles) of every core family and runtime, with their provenance."""
    cpi, tables, rows = result["cpi"], result["tables"], result["rows"]
    date = datetime.now(timezone.utc).date().isoformat()
    common = {
        "fitted_utc": date,
        "script": "benchmarks/latency_fit.py",
        "data": {
            "per_op_instructions": "shared/reference-models/mlperf-tiny/cortex-m4-instruction-counts.json "
            "(TFLM 90b983c2, CMSIS-NN v7.0.0-43, Cortex-M4 in QEMU mps2-an386; 4 MLPerf Tiny models)",
            "published_latency": PUBLISHED_SOURCE,
        },
        "method": "non-negative least squares per op class on per-op instruction counts (rows weighted "
        "1/sqrt(count)); one cycles-per-instruction factor fitted to the published latencies "
        "(least squares on relative errors)",
        "cycles_per_instruction_m4": round(cpi, 4),
        "assumptions": result["notes"],
        "residuals": [
            {
                "model": r["model"],
                "published_ms": r["published_ms"],
                "predicted_ms": round(r["predicted_ms"], 3),
                "error_pct": round(100 * (r["predicted_ms"] / r["published_ms"] - 1), 2),
                "lomo_error_pct": round(100 * (r["lomo_ms"] / r["published_ms"] - 1), 2),
                "instruction_error_pct": {rt: round(100 * r[f"instr_err_{rt}"], 2) for rt in BUILDS},
                "instruction_lomo_error_pct": {rt: round(100 * r[f"instr_lomo_err_{rt}"], 2) for rt in BUILDS},
            }
            for r in rows
        ],
    }
    m4 = {rt: {c: tuple(v * cpi for v in tables[rt][c]) for c in CLASSES} for rt in BUILDS}
    proxy = graphs[M7_RATIO_PROXY]
    m4_ratio = predicted_instructions(tables["tflm-reference"], proxy) / predicted_instructions(tables["tflm-cmsis-nn"], proxy)
    m7 = COREMARK_PER_MHZ["cortex-m4"] / COREMARK_PER_MHZ["cortex-m7"]
    m0 = COREMARK_PER_MHZ["cortex-m4"] / COREMARK_PER_MHZ["cortex-m0plus"]
    mac = TERMS.index("per_mac")
    derivations = {
        ("cortex-m4", "tflm-cmsis-nn"): (1.0, 1.0, "fitted: instruction model x cycles per instruction from the published NUCLEO-L4R5ZI latencies"),
        ("cortex-m4", "tflm-reference"): (1.0, 1.0, "fitted instruction model of the reference build x the same cycles per "
                                          "instruction as CMSIS-NN (assumption: no published reference-kernel latency on this core)"),
        ("cortex-m33", "tflm-cmsis-nn"): (1.0, 1.0, "Cortex-M4 profile x 1.0: ARMv8-M Mainline with the DSP extension runs the same "
                                          "CMSIS-NN SIMD code paths on a similar 3-stage pipeline (assumption; CoreMark/MHz "
                                          "4.02 vs 3.42 suggests up to 15% fewer cycles)"),
        ("cortex-m33", "tflm-reference"): (1.0, 1.0, "Cortex-M4 profile x 1.0 (same assumption as CMSIS-NN)"),
        ("cortex-m7", "tflm-cmsis-nn"): (m7, 1.0, f"Cortex-M4 profile x {m7:.3f} = CoreMark/MHz ratio 3.42/5.01: dual-issue "
                                         "6-stage pipeline, same SIMD instructions; assumes code and data in cache/TCM"),
        ("cortex-m7", "tflm-reference"): (m7 * M7_REFERENCE_OVER_CMSIS / m4_ratio, 1.0,
                                          f"Cortex-M4 reference profile x {m7:.3f} x {M7_REFERENCE_OVER_CMSIS}/{m4_ratio:.2f}: "
                                          "scaled so that reference/CMSIS-NN on the vww_96 MobileNet is the ~11x MCUNet "
                                          "measured on STM32H743 (mit-han-lab/tinyengine README), where the M4 instruction "
                                          f"counts give {m4_ratio:.2f}x; this makes reference kernels cost more cycles per "
                                          "M4 instruction on the M7 than on the M4 (older TFLM reference kernels and cache "
                                          "set-up of that measurement are likely causes): uncertain"),
        ("cortex-m0plus", "tflm-reference"): (m0, 1.0, f"Cortex-M4 reference profile x {m0:.3f} = CoreMark/MHz ratio 3.42/2.46 "
                                              "(ARMv6-M: Thumb-1, 2-stage pipeline); the kernels are plain C on both cores"),
        ("cortex-m0plus", "tflm-cmsis-nn"): (m0, 2.0, f"Cortex-M4 CMSIS-NN profile x {m0:.3f} (CoreMark/MHz 3.42/2.46), and x 2 "
                                             "on per-MAC costs: ARMv6-M has no DSP extension, so CMSIS-NN's dual 16-bit "
                                             "multiply-accumulate (SMLAD) and SXTB16 unpacking paths are compiled out and each "
                                             "MAC takes separate loads, multiply and add (assumption, uncertain by ~50%)"),
    }
    profiles = []
    for (core, runtime), (factor, mac_factor, how) in derivations.items():
        cycles = {}
        for name, values in m4[runtime].items():
            scaled = [v * factor for v in values]
            scaled[mac] *= mac_factor
            cycles[name] = tuple(round(v, 4) for v in scaled)
        provenance = {"kind": "packaged", "derivation": how, **common}
        if core != "cortex-m4":
            provenance["coremark_per_mhz"] = {"values": COREMARK_PER_MHZ, "source": COREMARK_SOURCE}
        profiles.append(Profile(core, runtime, cycles, provenance))
    return profiles


def print_report(result: dict) -> None:
    print(f"cycles per instruction (Cortex-M4, CMSIS-NN, fitted to published ms): {result['cpi']:.3f}\n")
    for runtime in BUILDS:
        print(f"instruction coefficients, {runtime} (instructions per unit)")
        print(f"  {'class':16s}" + "".join(f"{t:>20s}" for t in TERMS))
        for name in CLASSES:
            print(f"  {name:16s}" + "".join(f"{v:20.3f}" for v in result["tables"][runtime][name]))
        print()
    header = (f"{'model':24s} {'published ms':>12s} {'predicted ms':>12s} {'error':>7s} {'LOMO ms':>9s} {'LOMO err':>8s}"
              f" {'instr err cmsis':>15s} {'LOMO':>7s} {'instr err ref':>13s} {'LOMO':>7s}")
    print(header)
    for r in result["rows"]:
        print(f"{r['model']:24s} {r['published_ms']:12.2f} {r['predicted_ms']:12.2f} {100 * (r['predicted_ms'] / r['published_ms'] - 1):+6.1f}%"
              f" {r['lomo_ms']:9.2f} {100 * (r['lomo_ms'] / r['published_ms'] - 1):+7.1f}%"
              f" {100 * r['instr_err_tflm-cmsis-nn']:+14.1f}% {100 * r['instr_lomo_err_tflm-cmsis-nn']:+6.1f}%"
              f" {100 * r['instr_err_tflm-reference']:+12.1f}% {100 * r['instr_lomo_err_tflm-reference']:+6.1f}%")
    print("\nassumptions:\n  " + "\n  ".join(result["notes"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "reference-models" / "mlperf-tiny")
    parser.add_argument("--write", action="store_true", help="write the packaged profiles")
    args = parser.parse_args(argv)
    graphs, counts = load_data(args.data)
    result = evaluate(graphs, counts)
    print_report(result)
    if args.write:
        folder = REPO / "mcunas" / "estimators" / "profiles"
        for profile in derived_profiles(result, graphs):
            path = folder / f"{profile.core}-{profile.runtime}.json"
            save_profile(profile, path)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
