"""NSGA-II vs random search on MNIST against a 256 KB SRAM / 1 MB flash board, same trial budget.

Each (sampler, seed) is a real ``mcunas`` search (``run_search``) of [accuracy, latency_ms] on
arduino-nano-33-ble-sense, in a space whose wide early stages overflow the SRAM budget and whose
wide late stages overflow the flash budget, so the constraints cut the space. Scored by the
hypervolume of the feasible front (Optuna's hypervolume routine) in the minimization space
(1 - accuracy, latency_ms) against a fixed reference point (1.0, ``--ref-latency-ms``),
normalized by the reference box. Torch threads follow ``OMP_NUM_THREADS`` (default 1, see
:func:`mcunas.search.train.configure_threads`). The first seed of each sampler is finalized: its Pareto
members are retrained, exported to int8 TFLite and run in TFLite Micro, and the measured arena
is checked against the board budget.

    .venv/bin/python benchmarks/sampler_hypervolume.py --out runs/bench-hv
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import optuna

from mcunas.config import parse_experiment
from mcunas.estimators import load_board
from mcunas.io import atomic_write_text, write_json
from mcunas.search import run_search
from mcunas.search.finalize import pareto_front

BOARD = "arduino-nano-33-ble-sense"

SPACE = {
    "name": "mobilenetv2",
    "stem_stride": 1,
    "stem_channels": [8, 16, 32, 48],
    "stages": [
        {"stride": 2, "channels": [16, 24, 32, 48], "depth": [1, 2]},
        {"stride": 2, "channels": [24, 32, 48], "depth": [1, 2]},
        {"stride": 2, "channels": [48, 96, 192, 320], "depth": [1, 4]},
    ],
    "kernel_sizes": [3, 5],
    "expand_ratios": [1, 3, 6],
}


def experiment_for(args: argparse.Namespace, sampler: str, seed: int):
    return parse_experiment({
        "name": f"hv-{sampler}",
        "seed": seed,
        "dataset": {"name": "mnist", "data_dir": str(args.mnist), "resolution": 28,
                    "max_train_samples": args.train_samples, "max_test_samples": args.test_samples},
        "space": SPACE,
        "boards": [BOARD],
        "objectives": ["accuracy", "latency_ms"],
        "search": {"sampler": sampler, "trials": args.trials},
        "training": {"epochs": args.epochs, "batch_size": 32, "optimizer": "adam", "lr": 0.005},
        "distillation": {"enabled": False},
        "final": {"epochs": args.final_epochs, "max_models": args.max_models},
        "export": {"enabled": True, "calibration_samples": 128},
        "report": {"enabled": False},
    })


def hypervolume(trials: list, directions: list[str], ref_latency_ms: float) -> tuple[float, int]:
    """Normalized hypervolume of the feasible front and its size."""
    from optuna._hypervolume import compute_hypervolume

    front = pareto_front(trials, directions)
    points = np.array([[1.0 - t.values[0], t.values[1]] for t in front]).reshape(-1, 2)
    points = points[(points[:, 0] < 1.0) & (points[:, 1] < ref_latency_ms)]
    if len(points) == 0:
        return 0.0, 0
    reference = np.array([1.0, ref_latency_ms])
    return float(compute_hypervolume(points, reference)) / float(np.prod(reference)), len(front)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-hv"))
    parser.add_argument("--samplers", nargs="+", default=["nsga2", "random"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-samples", type=int, default=1500)
    parser.add_argument("--test-samples", type=int, default=1000)
    parser.add_argument("--final-epochs", type=int, default=2)
    parser.add_argument("--max-models", type=int, default=2)
    parser.add_argument("--ref-latency-ms", type=float, default=1000.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    board = load_board(BOARD)

    rows = []
    for sampler in args.samplers:
        for seed in args.seeds:
            experiment = experiment_for(args, sampler, seed)
            run_dir = args.out / f"{sampler}-s{seed}"
            start = time.perf_counter()
            result = run_search(experiment, run_dir, finalize=seed == args.seeds[0])
            study = optuna.load_study(study_name=result.studies[BOARD], storage=result.storage_url)
            trials = study.get_trials(deepcopy=False)
            hv, front_size = hypervolume(trials, experiment.directions(), args.ref_latency_ms)
            feasible = [t for t in trials if t.user_attrs.get("feasible")]
            exports = []
            for model in result.finals.get(BOARD, []):
                validation = json.loads((model.export_dir / "validation.json").read_text())
                estimates = study.trials[model.trial].user_attrs["estimates"]
                exports.append({
                    "trial": model.trial, "block_string": model.metrics["block_string"],
                    "accuracy_test_float": model.metrics["accuracy_test"],
                    "accuracy_int8": validation["accuracy_int8"],
                    "arena_bytes_measured_host": validation["arena_bytes_measured"],
                    "arena_bytes_predicted_host": validation["arena_bytes_predicted"],
                    "arena_bytes_predicted_target": validation["arena_bytes_predicted_target"],
                    "model_bytes": validation["model_bytes"],
                    "flash_bytes_estimated": estimates["flash_bytes"],
                    "latency_ms_estimated": estimates["latency_ms"],
                    "fits_sram_measured": validation["arena_bytes_measured"] + board.sram_reserve_bytes <= board.sram_bytes,
                    "fits_flash": estimates["flash_bytes"] - estimates["model_bytes"] + validation["model_bytes"]
                    <= board.flash_budget_bytes,
                })
            rows.append({"sampler": sampler, "seed": seed, "hypervolume": hv, "front_size": front_size,
                         "feasible": len(feasible), "trials": len(trials),
                         "best_accuracy": max((t.values[0] for t in feasible), default=0.0),
                         "seconds": time.perf_counter() - start, "exports": exports})
            print(json.dumps(rows[-1]), flush=True)

    lines = [
        f"MNIST 28x28, {args.train_samples} training pool, {args.trials} trials x {args.epochs} epoch(s) per run, "
        f"objectives [accuracy, latency_ms] on {BOARD} (SRAM {board.sram_bytes // 1024} KB, flash "
        f"{board.flash_bytes // 1024} KB); hypervolume of the feasible front in (1 - accuracy, latency_ms) against the "
        f"reference point (1.0, {args.ref_latency_ms:g} ms), normalized to the reference box.",
        "",
        "| sampler | seed | hypervolume | front size | feasible trials | best val acc | minutes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(f"| {row['sampler']} | {row['seed']} | {row['hypervolume']:.4f} | {row['front_size']} | "
                     f"{row['feasible']}/{row['trials']} | {100 * row['best_accuracy']:.2f}% | {row['seconds'] / 60:.1f} |")
    for sampler in args.samplers:
        values = [r["hypervolume"] for r in rows if r["sampler"] == sampler]
        spread_text = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        lines.append(f"| **{sampler} mean** | | {statistics.mean(values):.4f}{spread_text} | | | | |")
    lines += ["", "Exported Pareto members (first seed), measured in TFLite Micro (host build):", "",
              "| sampler | trial | arch | float test acc | int8 test acc | arena measured (host) | arena predicted host / target | model bytes | fits SRAM (measured + reserve) | fits flash |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        for e in row["exports"]:
            lines.append(f"| {row['sampler']} | {e['trial']} | `{e['block_string']}` | {100 * e['accuracy_test_float']:.2f}% | "
                         f"{100 * e['accuracy_int8']:.2f}% | {e['arena_bytes_measured_host']:,} | "
                         f"{e['arena_bytes_predicted_host']:,} / {e['arena_bytes_predicted_target']:,} | "
                         f"{e['model_bytes']:,} | {e['fits_sram_measured']} | {e['fits_flash']} |")
    table = "\n".join(lines) + "\n"
    print(table)
    atomic_write_text(args.out / "sampler_hypervolume.md", table)
    write_json(args.out / "sampler_hypervolume.json", {"rows": rows, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}})


if __name__ == "__main__":
    main()
