"""Predicted vs measured TFLite Micro arena and .tflite size, and the estimators' speed.

For each model: the host (64-bit, reference kernels) arena predicted by
``mcunas.estimators.memory`` and measured by the real interpreter (``mcunas.tflm``), the 32-bit
arena predicted for both kernel builds and, where a measurement exists, measured on a Cortex-M4
build (``cortex-m4-instruction-counts.json`` for the MLPerf Tiny models,
``space-instruction-counts.json`` for the space models), and the predicted vs actual file size.

Usage::

    python benchmarks/arena_vs_tflm.py                       # MLPerf Tiny + person_detect in ../shared
    python benchmarks/arena_vs_tflm.py exports/ model.tflite   # files and folders of .tflite files
    python benchmarks/arena_vs_tflm.py --space                 # the 16 space models' 32-bit arenas
    python benchmarks/arena_vs_tflm.py --generated DIR         # write tests/model_zoo.py's models to DIR, check them

The last line reports the speed on the largest graph: arena pairs (32-bit and host) per second,
and the time of one model-size estimate of an imported graph (its layout replay).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mcunas.estimators.flash import model_bytes  # noqa: E402
from mcunas.estimators.memory import arena_bytes, arena_bytes_pair  # noqa: E402
from mcunas.graph.tflite import read_tflite  # noqa: E402
from mcunas.tflm import measure_arena_bytes  # noqa: E402

SHARED = Path(os.environ.get("MCUNAS_SHARED", REPO_ROOT.parent / "shared")) / "reference-models"
MLPERF_DIR = SHARED / "mlperf-tiny"
LATENCY_DIR = SHARED / "latency"
BUILDS = ("cmsis-nn", "reference")


def _model_paths(arguments: list[str]) -> list[Path]:
    if not arguments:
        return sorted(MLPERF_DIR.glob("*.tflite")) + sorted(LATENCY_DIR.glob("*.tflite"))
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        paths.extend(sorted(path.glob("*.tflite")) if path.is_dir() else [path])
    return paths


def _measured_32_bit(counts_file: Path) -> dict[tuple[str, str], int]:
    if not counts_file.exists():
        return {}
    records = json.loads(counts_file.read_text())["records"]
    return {(record["model"], record["build"]): record["arena_used_bytes"] for record in records}


def _calls_per_second(function, graph, seconds: float = 1.0) -> float:
    count = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        for _ in range(10):
            function(graph)
        count += 10
    return count / (time.process_time() - start)


def _row(cells) -> str:
    return " | ".join(str(cell) for cell in cells)


def _files_table(paths: list[Path]) -> None:
    measured_32 = _measured_32_bit(MLPERF_DIR / "cortex-m4-instruction-counts.json")
    header = ["model", "pred host", "meas host", "err"]
    for build in BUILDS:
        header += [f"pred 32-bit {build}", "meas", "err"]
    header += ["pred bytes", "file bytes", "err %"]
    print(_row(header))
    print(_row("---" for _ in header))
    host_errors, size_errors = [], []
    for path in paths:
        graph = read_tflite(path)
        predicted, measured = arena_bytes(graph, "host", "reference"), measure_arena_bytes(path)
        host_errors.append(predicted - measured)
        cells = [path.stem, predicted, measured, predicted - measured]
        for build in BUILDS:
            m32 = arena_bytes(graph, "cortex-m", build)
            truth = measured_32.get((path.stem, build))
            cells += [m32, "-" if truth is None else truth, "-" if truth is None else m32 - truth]
        size = model_bytes(graph)
        size_errors.append(100 * (size - graph.file_bytes) / graph.file_bytes)
        cells += [size, graph.file_bytes, f"{size_errors[-1]:+.2f}"]
        print(_row(cells))
    exact = sum(error == 0 for error in host_errors)
    print(f"\n{len(paths)} models: host arena exact on {exact}, max |error| {max(map(abs, host_errors))} B; "
          f"size error {min(size_errors):+.2f}% .. {max(size_errors):+.2f}%")


def _space_table() -> None:
    from mcunas.spaces import get_space, load_arch

    measured = _measured_32_bit(LATENCY_DIR / "space-instruction-counts.json")
    models = sorted({model for model, _ in measured})
    header = ["model", "ops"] + [cell for build in BUILDS for cell in (f"pred 32-bit {build}", "meas", "err")]
    print(_row(header))
    print(_row("---" for _ in header))
    errors = []
    for model in models:
        arch = load_arch(LATENCY_DIR / "space-archs" / f"{model}.json")
        graph = get_space(arch.space).graph(arch)
        cells = [model, len(graph.ops)]
        for build in BUILDS:
            predicted = arena_bytes(graph, "cortex-m", build)
            errors.append(predicted - measured[(model, build)])
            cells += [predicted, measured[(model, build)], errors[-1]]
        print(_row(cells))
    print(f"\n{len(errors)} arenas: exact {sum(e == 0 for e in errors)}, within 16 B {sum(abs(e) <= 16 for e in errors)}, "
          f"errors {min(errors)} .. {max(errors)} B")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=".tflite files or folders (default: the models in ../shared)")
    parser.add_argument("--space", action="store_true", help="the 16 space models' measured 32-bit arenas")
    parser.add_argument("--generated", type=Path, metavar="DIR",
                        help="write the generated models of tests/model_zoo.py to DIR and check them")
    args = parser.parse_args(argv)
    if args.space:
        _space_table()
        return 0
    if args.generated is not None:
        sys.path.insert(0, str(REPO_ROOT / "tests"))
        from model_zoo import write_all

        paths = sorted(write_all(args.generated).values())
    else:
        paths = _model_paths(args.models)
    if not paths:
        print(f"no .tflite models found (looked in {MLPERF_DIR})", file=sys.stderr)
        return 2
    _files_table(paths)
    largest = max((read_tflite(path) for path in paths), key=lambda graph: len(graph.ops))
    arenas = _calls_per_second(lambda graph: arena_bytes_pair(graph, "cmsis-nn"), largest)
    sizes = _calls_per_second(model_bytes, largest)
    print(f"speed (one core) on {largest.name} ({len(largest.ops)} ops, {len(largest.tensors)} tensors): "
          f"{arenas:,.0f} arena pairs/s; {1000 / sizes:.1f} ms per model size (layout replay of an imported graph)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
