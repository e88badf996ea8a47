"""Export success rate and measured-vs-predicted arena / model size over random architectures.

For each space, samples ``--per-space`` architectures (Optuna RandomSampler, fixed seed, the
space's default options unless ``--tiny``), exports each with random weights
(:func:`mcunas.export.selfcheck.check_export`) and reports: success rate, export seconds per
model, whether the exported structure equals ``Space.graph(arch)``, and predicted - measured
host arena and .tflite size. ``--isolation`` times a few exports in a child process against
in-process. ``--mnist DIR`` trains a small MobileNetV1 on an MNIST subset, exports it with
:func:`mcunas.export.export_model` and prints the float -> int8 accuracy drop in TFLM.

    .venv/bin/python benchmarks/export_success.py --per-space 30 --json /tmp/export_success.json
    .venv/bin/python benchmarks/export_success.py --per-space 0 --mnist ../shared/datasets/mnist
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def sample_archs(space_name: str, count: int, seed: int, tiny: bool):
    import optuna

    from mcunas.spaces import get_space

    options = {}
    if tiny:
        options = dict(resolutions=[8, 12, 15, 16], stem_channels=[4, 8], stages=[
            {"stride": 1, "channels": [4, 8], "depth": [1, 2]},
            {"stride": 2, "channels": [8, 12], "depth": [1, 2]},
            {"stride": 2, "channels": [12, 16], "depth": [1, 2]},
        ])
    space = get_space(space_name, **options)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space, [space.sample(study.ask()) for _ in range(count)]


def run_space(space_name: str, count: int, seed: int, tiny: bool, work: Path) -> list[dict]:
    from mcunas.export.selfcheck import check_export

    space, archs = sample_archs(space_name, count, seed, tiny)
    records = []
    for i, arch in enumerate(archs):
        check = check_export(space, arch, work / f"{space_name}_{i}.tflite", seed=seed + i)
        record = check.to_dict()
        records.append(record)
        status = "ok" if check.exported and not check.differences else ("DIFF" if check.exported else "FAIL")
        print(f"{space_name} {i:3d} {status:4s} {check.export_seconds:5.1f}s arena {check.arena_bytes_measured} "
              f"(pred {check.arena_error_bytes:+}) model {check.model_bytes} (pred {check.model_error_bytes:+}) "
              f"{check.block_string}" if check.exported else f"{space_name} {i:3d} FAIL {check.error}", flush=True)
    return records


def summarize(space_name: str, records: list[dict]) -> dict:
    ok = [r for r in records if r["exported"]]
    arena_errors = [abs(r["arena_error_bytes"]) for r in ok]
    model_errors = [abs(r["model_error_bytes"]) for r in ok]
    return {
        "space": space_name,
        "models": len(records),
        "exported": len(ok),
        "structure_equal": sum(1 for r in ok if not r["differences"]),
        "export_seconds_median": statistics.median(r["export_seconds"] for r in ok) if ok else None,
        "export_seconds_max": max((r["export_seconds"] for r in ok), default=None),
        "arena_exact_16B": sum(1 for e in arena_errors if e <= 16),
        "arena_abs_error_max": max(arena_errors, default=None),
        "model_abs_error_max": max(model_errors, default=None),
        "model_rel_error_max_pct": max((100 * abs(r["model_error_bytes"]) / r["model_bytes"] for r in ok), default=None),
        "arena_measured_range": [min((r["arena_bytes_measured"] for r in ok), default=None),
                                 max((r["arena_bytes_measured"] for r in ok), default=None)],
    }


def time_isolation(work: Path, repeats: int = 2) -> dict:
    """Seconds per export of one small architecture, child process vs in-process (warm)."""
    from mcunas.export.selfcheck import check_export

    space, (arch,) = sample_archs("mobilenetv1", 1, 0, tiny=True)
    check_export(space, arch, work / "warm.tflite", isolate=False)  # TensorFlow imported once
    timings = {}
    for isolate in (True, False):
        seconds = [check_export(space, arch, work / f"iso{isolate}.tflite", isolate=isolate).export_seconds
                   for _ in range(repeats)]
        timings["child_process_s" if isolate else "in_process_s"] = statistics.mean(seconds)
    return timings


def run_mnist(mnist_dir: Path, work: Path, epochs: int, train_samples: int, test_samples: int) -> dict:
    """Train a small MobileNetV1 on MNIST, export it, measure the float -> int8 drop in TFLM."""
    import torch
    import yaml

    from mcunas.config import load_experiment
    from mcunas.export import export_model
    from mcunas.search.train import TrainData, train
    from mcunas.spaces import get_space

    config = {
        "name": "mnist-int8",
        "dataset": {"name": "mnist", "data_dir": str(mnist_dir.resolve()), "resolution": 28,
                    "max_train_samples": train_samples, "max_test_samples": test_samples},
        "space": {"name": "mobilenetv1"},
        "boards": ["arduino-nano-33-ble-sense"],
        "training": {"batch_size": 64, "optimizer": "adam", "lr": 0.003, "augment": False},
        "export": {"calibration_samples": 256, "max_int8_drop_pp": 1.0},
    }
    config_path = work / "mnist.yaml"
    config_path.write_text(yaml.safe_dump(config))
    experiment = load_experiment(config_path)
    space = get_space("mobilenetv1", input_channels=1, resolutions=[28], stem_channels=[16], stages=[
        {"stride": 1, "channels": [24], "depth": [1, 1]},
        {"stride": 2, "channels": [32], "depth": [2, 2]},
        {"stride": 2, "channels": [64], "depth": [2, 2]},
    ], kernel_sizes=[3])
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    arch = space.sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask())
    from mcunas.data import load_dataset

    splits = load_dataset(experiment.dataset, experiment.seed)
    torch.manual_seed(0)
    model = space.build(arch)
    start = time.perf_counter()
    result = train(model, TrainData.from_splits(splits, "mnist"), experiment.training, epochs=epochs, seed=0,
                   description="mnist")
    train_seconds = time.perf_counter() - start
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    start = time.perf_counter()
    validation = export_model(arch, weights, work / "mnist_export", splits=splits, board="arduino-nano-33-ble-sense",
                              experiment=experiment, isolate=False)
    export_seconds = time.perf_counter() - start
    print(validation.table())
    return {"arch": arch.block_string(), "train_samples": len(splits.train), "epochs": epochs,
            "accuracy_val": result.accuracy_val, "train_seconds": train_seconds, "export_seconds": export_seconds,
            **{k: v for k, v in validation.to_dict().items() if k != "worst_layers"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-space", type=int, default=30)
    parser.add_argument("--spaces", nargs="+", default=["mobilenetv2", "mobilenetv1"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="8-16 px, few channels (fast)")
    parser.add_argument("--isolation", action="store_true", help="time child-process vs in-process export")
    parser.add_argument("--mnist", type=Path, help="MNIST folder: train, export, report the int8 drop")
    parser.add_argument("--mnist-epochs", type=int, default=2)
    parser.add_argument("--mnist-train-samples", type=int, default=10000)
    parser.add_argument("--mnist-test-samples", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="write all records and summaries here")
    args = parser.parse_args(argv)

    report: dict = {"summaries": [], "records": {}}
    with tempfile.TemporaryDirectory(prefix="mcunas-bench-export-") as tmp:
        work = Path(tmp)
        for space_name in args.spaces if args.per_space else []:
            records = run_space(space_name, args.per_space, args.seed, args.tiny, work)
            report["records"][space_name] = records
            report["summaries"].append(summarize(space_name, records))
        if args.isolation:
            report["isolation"] = time_isolation(work)
        if args.mnist:
            report["mnist"] = run_mnist(args.mnist, work, args.mnist_epochs, args.mnist_train_samples,
                                        args.mnist_test_samples)
    for summary in report["summaries"]:
        print(json.dumps(summary))
    for key in ("isolation", "mnist"):
        if key in report:
            print(key, json.dumps(report[key]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
