"""MNIST under μNAS's budgets: the best error found, counted as μNAS counts and as TFLM allocates,
with and without the search-space optimization of ``mcunas space optimize``.

μNAS (Liberis et al., "μNAS: Constrained Neural Architecture Search for Microcontrollers",
EuroMLSys 2021) states its MNIST budgets as peak activation memory and model size; this
benchmark searches ``experiments/mnist_unas.yaml`` (the ``cnn`` space: plain and separable
convolutions with max pooling, 28x28 MNIST, single-objective accuracy under
``constraints.max_activation_bytes`` / ``max_param_bytes``, TPE with Hyperband over epochs) and
the same experiment narrowed by ``optimize_space`` (resolution x width grid, the chosen cell).

Steps, each resumable (rerunning the same command reuses finished runs and timings):

1. space optimization of the config (``OUT/space``: table, CDF figure, report, narrowed config);
2. main runs (``OUT/main-config``, ``OUT/main-optimized``): the experiments as written (trials,
   epochs, full MNIST), the best model retrained for ``final.epochs``, exported to an int8
   ``.tflite`` (stripped of what TFLM does not read) and run in the TFLite Micro interpreter;
3. paired runs (``OUT/paired-<arm>-<seed>``): both arms for each seed with a smaller budget
   (``--paired-trials``, ``--paired-epochs``, a ``--paired-pool`` image subset), no retraining;
   scored by the best validation error and the hypervolume of the feasible trials in
   (error, activation bytes / budget, parameter bytes / budget) against (1, 1, 1);
4. with ``--main-arms ... tflm``: the same budgets as TFLM allocates them (the whole 32-bit
   arena <= the activation budget, the stripped ``.tflite`` <= the parameter budget): a space
   optimization of the config under those budgets (``OUT/space-tflm``, its own grid and
   ``--tflm-min-feasible``) and a main run of its narrowed config (``OUT/main-tflm``).

Prints the tables (markdown) and writes them with the raw rows to ``OUT/unas_mnist.md|json``.

    .venv/bin/python benchmarks/unas_mnist.py --out runs/bench-unas
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from mcunas.config import Experiment, load_experiment, parse_experiment
from mcunas.io import atomic_write_text, read_json, write_json

REPO = Path(__file__).resolve().parents[1]
ARMS = ("config", "optimized")  # the paired comparison
MAIN_ARMS = ("config", "optimized", "tflm")
# The budgets of the two counts: (Cost field, constraints key) pairs, μNAS's and TFLM's.
UNAS_BUDGETS = (("activation_bytes", "max_activation_bytes"), ("param_bytes", "max_param_bytes"))
TFLM_BUDGETS = (("arena_bytes", "max_arena_bytes"), ("model_bytes", "max_model_bytes"))


def _timed(out: Path, key: str, run: Any) -> float:
    """Run ``run()`` unless ``key`` was timed before; return its recorded wall time (s)."""
    path = out / "timings.json"
    timings = read_json(path) if path.is_file() else {}
    if key not in timings:
        start = time.perf_counter()
        run()
        timings = read_json(path) if path.is_file() else {}
        timings[key] = round(time.perf_counter() - start, 1)
        write_json(path, timings)
    return float(timings[key])


def _with(experiment: Experiment, **sections: dict[str, Any]) -> Experiment:
    data = experiment.to_dict()
    for name, values in sections.items():
        data[name] = {**data[name], **values} if isinstance(data[name], dict) else values
    return parse_experiment(data)


def _trials(run_dir: Path) -> list[Any]:
    from mcunas.rundir.runinfo import read_run_json
    from mcunas.rundir.storage import open_run_storage

    info = read_run_json(run_dir)
    storage = open_run_storage(run_dir, info["storage"])
    (study_name,) = info["studies"].values()
    return storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False)


def _search_stats(run_dir: Path, experiment: Experiment) -> dict[str, Any]:
    """Trial counts, the best feasible COMPLETE trial and the hypervolume of the feasible trials."""
    import numpy as np
    from optuna._hypervolume import compute_hypervolume
    from optuna.trial import TrialState

    trials = _trials(run_dir)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in complete if t.user_attrs.get("feasible")]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    constraints = experiment.constraints
    axes = [(field, getattr(constraints, key)) for field, key in (*UNAS_BUDGETS, *TFLM_BUDGETS)
            if getattr(constraints, key) is not None]
    points = [(1.0 - t.user_attrs["accuracy_val"], *(t.user_attrs["estimates"][field] / budget for field, budget in axes))
              for t in feasible]
    hypervolume = float(compute_hypervolume(np.array(points), np.ones(1 + len(axes)))) if points else 0.0
    best = max(feasible, key=lambda t: (t.user_attrs["accuracy_val"], -t.number), default=None)
    return {
        "trials": len(trials), "complete": len(complete), "pruned": len(pruned),
        "infeasible": sum(1 for t in complete if not t.user_attrs.get("feasible")),
        "trained": len(feasible) + len(pruned),
        "epochs_trained": sum(int(t.user_attrs.get("epochs") or 0) for t in trials),
        "hypervolume": hypervolume,
        "best_trial": None if best is None else best.number,
        "best_val_error": None if best is None else 1.0 - best.user_attrs["accuracy_val"],
        "best_block_string": None if best is None else best.user_attrs["block_string"],
        "best_estimates": None if best is None else best.user_attrs["estimates"],
    }


def _final_stats(run_dir: Path) -> dict[str, Any]:
    """The retrained and exported best model: test errors (float, int8 in TFLM), sizes both ways."""
    from mcunas.estimators import estimate, load_board
    from mcunas.estimators.flash import model_bytes
    from mcunas.spaces import arch_from_dict, get_space

    exports = sorted(run_dir.glob("exports/*/*/validation.json"))
    if not exports:
        return {}
    validation = read_json(exports[0])
    metrics = read_json(run_dir / "final" / exports[0].parent.parent.name / exports[0].parent.name / "metrics.json")
    arch = arch_from_dict(metrics["arch"])
    graph = get_space(arch.space).graph(arch)
    cost = estimate(graph, load_board(validation["board"]), validation["runtime"])
    return {
        "block_string": metrics["block_string"], "final_epochs": metrics["epochs"],
        "test_error_float": 1.0 - metrics["accuracy_test"],
        "test_error_int8_tflm": 1.0 - validation["accuracy_int8"], "test_samples": validation["test_samples"],
        "activation_bytes": cost.activation_bytes, "param_bytes": cost.param_bytes, "params": cost.params,
        "macs": cost.macs,
        "arena_bytes_measured_host": validation["arena_bytes_measured"],
        "arena_bytes_predicted_host": validation["arena_bytes_predicted"],
        "arena_bytes_target": cost.arena_bytes,
        "tflite_bytes": validation["model_bytes"], "tflite_bytes_predicted": model_bytes(graph),
        "latency_ms": cost.latency_ms,
    }


def _space_step(args: argparse.Namespace, base: Experiment, name: str, resolutions: list[int], widths: list[float],
                min_feasible: float) -> Experiment:
    """The narrowed experiment of a space optimization into ``OUT/<name>`` (reused when there)."""
    from mcunas.report import write_report
    from mcunas.rundir.spacedir import is_space_dir, read_space_result
    from mcunas.search.space_optimize import optimize_space

    folder = args.out / name
    if not is_space_dir(folder):
        optimize_space(base, folder, samples=args.samples, resolutions=resolutions, widths=widths,
                       min_feasible_fraction=min_feasible)
        write_report([], folder / "report.html", [folder])
    result = read_space_result(folder)
    (relative,) = result.narrowed.values()
    return load_experiment(folder / relative)


def _as_tflm_allocates(experiment: Experiment) -> Experiment:
    """The experiment with μNAS's budget numbers on the whole arena and the .tflite instead."""
    constraints = experiment.constraints
    values = {tflm: getattr(constraints, unas) for (_, unas), (_, tflm) in zip(UNAS_BUDGETS, TFLM_BUDGETS)}
    return _with(experiment, name=f"{experiment.name}_tflm", constraints={
        **values, **{unas: None for _, unas in UNAS_BUDGETS}})


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "| " + " | ".join("---" if show is str else "---:" for _, _, show in columns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join("" if row.get(key) is None else show(row[key]) for key, _, show in columns) + " |")
    return lines


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "experiments" / "mnist_unas.yaml")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-unas"))
    parser.add_argument("--samples", type=int, default=1000, help="space optimize: architectures per cell")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[14, 16, 20, 24, 27, 28])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.5, 0.75, 1.0, 1.25, 1.5])
    parser.add_argument("--main-arms", nargs="*", choices=MAIN_ARMS, default=["config", "optimized"],
                        help="main runs to make (tflm: the budgets as TFLM allocates them)")
    parser.add_argument("--tflm-resolutions", type=int, nargs="+", default=[8, 10, 12, 14, 16, 20, 28])
    parser.add_argument("--tflm-widths", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--tflm-min-feasible", type=float, default=0.01,
                        help="space optimize under TFLM's budgets: least feasible fraction of a chosen cell")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--paired-trials", type=int, default=30)
    parser.add_argument("--paired-epochs", type=int, default=6)
    parser.add_argument("--paired-pool", type=int, default=12000, help="MNIST images (train + val) of the paired runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from mcunas.run import run_experiment
    from mcunas.search import run_search

    args.out.mkdir(parents=True, exist_ok=True)
    base = load_experiment(args.config)
    arms = {"config": base, "optimized": _space_step(args, base, "space", args.resolutions, args.widths, 0.05)}
    if "tflm" in args.main_arms:
        arms["tflm"] = _space_step(args, _as_tflm_allocates(base), "space-tflm", args.tflm_resolutions,
                                   args.tflm_widths, args.tflm_min_feasible)

    main_rows = []
    for arm in args.main_arms:
        experiment = arms[arm]
        run_dir = args.out / f"main-{arm}"
        seconds = _timed(args.out, f"main-{arm}", lambda: run_experiment(experiment, run_dir))
        main_rows.append({"arm": arm, "resolution": experiment.dataset.resolution, "wall_s": seconds,
                          **_search_stats(run_dir, experiment), **_final_stats(run_dir)})

    paired_rows = []
    for seed in args.seeds:
        for arm in ARMS:
            experiment = arms[arm]
            small = _with(experiment, seed=seed, search={"trials": args.paired_trials},
                          training={"epochs": args.paired_epochs}, dataset={"max_train_samples": args.paired_pool},
                          export={"enabled": False}, report={"enabled": False})
            run_dir = args.out / f"paired-{arm}-{seed}"
            seconds = _timed(args.out, f"paired-{arm}-{seed}", lambda: run_search(small, run_dir, finalize=False))
            paired_rows.append({"arm": arm, "seed": seed, "wall_s": seconds, **_search_stats(run_dir, small)})

    constraints = base.constraints
    lines = [f"Budgets (μNAS's counts): activations <= {constraints.max_activation_bytes:,} B (planned arena, no "
             f"persistent tail), parameters <= {constraints.max_param_bytes:,} B (int8 weights + int32 biases); "
             f"arm tflm: the same numbers on the whole 32-bit TFLM arena and the stripped .tflite; "
             f"board {base.boards[0]}.", ""]
    if main_rows:
        lines += _table(main_rows, [
            ("arm", "space", str), ("resolution", "input", str), ("trials", "trials", str), ("pruned", "pruned", str),
            ("infeasible", "rejected before training", str), ("epochs_trained", "search epochs", str),
            ("wall_s", "wall time (min)", lambda s: f"{s / 60:.0f}"), ("best_val_error", "best val error", _pct),
            ("test_error_float", "test error (float)", _pct), ("test_error_int8_tflm", "test error (int8, TFLM)", _pct),
            ("block_string", "architecture", lambda s: f"`{s}`"),
        ]) + [""] + _table(main_rows, [
            ("arm", "space", str), ("activation_bytes", "activations (μNAS)", lambda v: f"{v:,} B"),
            ("param_bytes", "parameters (μNAS)", lambda v: f"{v:,} B"),
            ("arena_bytes_measured_host", "arena measured (TFLM host)", lambda v: f"{v:,} B"),
            ("arena_bytes_target", "arena predicted (32-bit)", lambda v: f"{v:,} B"),
            ("tflite_bytes", ".tflite (stripped)", lambda v: f"{v:,} B"),
            ("tflite_bytes_predicted", ".tflite predicted", lambda v: f"{v:,} B"),
            ("macs", "MACs", lambda v: f"{v:,}"), ("latency_ms", "latency (ms)", lambda v: f"{v:.2f}"),
        ]) + [""]
    if paired_rows:
        lines += _table(paired_rows, [
            ("arm", "space", str), ("seed", "seed", str), ("trained", "trained", str), ("infeasible", "rejected", str),
            ("pruned", "pruned", str), ("best_val_error", "best val error", _pct),
            ("hypervolume", "hypervolume", lambda v: f"{v:.4f}"), ("wall_s", "wall (min)", lambda s: f"{s / 60:.1f}"),
        ])
        for arm in ARMS:
            rows = [r for r in paired_rows if r["arm"] == arm]
            hv = [r["hypervolume"] for r in rows]
            errors = [r["best_val_error"] for r in rows if r["best_val_error"] is not None]
            lines.append(f"| **{arm}: mean ± sd** | | {statistics.mean(r['trained'] for r in rows):.1f} | | | "
                         f"{_pct(statistics.mean(errors)) if errors else ''} | "
                         f"{statistics.mean(hv):.4f} ± {statistics.stdev(hv) if len(hv) > 1 else 0:.4f} | |")
        wins = sum(1 for seed in args.seeds if next(r["hypervolume"] for r in paired_rows if r["arm"] == "optimized" and r["seed"] == seed)
                   > next(r["hypervolume"] for r in paired_rows if r["arm"] == "config" and r["seed"] == seed))
        lines += ["", f"optimized space: higher hypervolume on {wins} of {len(args.seeds)} seeds"]
    text = "\n".join(lines)
    print(text)
    atomic_write_text(args.out / "unas_mnist.md", text + "\n")
    write_json(args.out / "unas_mnist.json", {"main": main_rows, "paired": paired_rows, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}})


if __name__ == "__main__":
    main()
