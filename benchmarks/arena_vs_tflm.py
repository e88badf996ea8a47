"""Predicted vs measured TFLite Micro arena and .tflite size, and the estimators' speed.

For each model: the host (64-bit, reference kernels) arena predicted by
``mcunas.estimators.memory`` and measured by the real interpreter (``mcunas.tflm``), the 32-bit
arena predicted and -- for the MLPerf Tiny models -- measured on a Cortex-M4 build (from
``cortex-m4-instruction-counts.json``), and the predicted vs actual file size.

Usage::

    python benchmarks/arena_vs_tflm.py                      # the MLPerf Tiny models in ../shared
    python benchmarks/arena_vs_tflm.py exports/ model.tflite  # files and folders of .tflite files
    python benchmarks/arena_vs_tflm.py --kernels cmsis-nn

The last lines report how many full estimates (both arenas and the model size) per second one
core computes for the largest graph.
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

MLPERF_DIR = Path(os.environ.get("MCUNAS_SHARED", REPO_ROOT.parent / "shared")) / "reference-models" / "mlperf-tiny"


def _model_paths(arguments: list[str]) -> list[Path]:
    if not arguments:
        return sorted(MLPERF_DIR.glob("*.tflite"))
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        paths.extend(sorted(path.glob("*.tflite")) if path.is_dir() else [path])
    return paths


def _cortex_m4_arenas() -> dict[tuple[str, str], int]:
    counts = MLPERF_DIR / "cortex-m4-instruction-counts.json"
    if not counts.exists():
        return {}
    records = json.loads(counts.read_text())["records"]
    return {(record["model"], record["build"]): record["arena_used_bytes"] for record in records}


def _estimates_per_second(graph, kernels: str, seconds: float = 1.0) -> float:
    count = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        for _ in range(50):
            arena_bytes_pair(graph, kernels)
            model_bytes(graph)
        count += 50
    return count / (time.process_time() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=".tflite files or folders (default: the MLPerf Tiny models)")
    parser.add_argument("--kernels", choices=("cmsis-nn", "reference"), default="reference",
                        help="kernel library of the 32-bit prediction (default: reference)")
    args = parser.parse_args(argv)
    paths = _model_paths(args.models)
    if not paths:
        print(f"no .tflite models found (looked in {MLPERF_DIR})", file=sys.stderr)
        return 2
    measured_32 = _cortex_m4_arenas()
    header = (
        "model", "pred host", "meas host", "err", "pred 32-bit", "meas 32-bit", "err",
        "pred bytes", "file bytes", "err %",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    largest = None
    for path in paths:
        graph = read_tflite(path)
        host_predicted = arena_bytes(graph, "host", "reference")
        host_measured = measure_arena_bytes(path)
        m32_predicted = arena_bytes(graph, "cortex-m", args.kernels)
        m32_measured = measured_32.get((path.stem, args.kernels))
        size_predicted = model_bytes(graph)
        row = (
            path.stem,
            host_predicted,
            host_measured,
            host_predicted - host_measured,
            m32_predicted,
            "-" if m32_measured is None else m32_measured,
            "-" if m32_measured is None else m32_predicted - m32_measured,
            size_predicted,
            graph.file_bytes,
            f"{100 * (size_predicted - graph.file_bytes) / graph.file_bytes:+.2f}",
        )
        print(" | ".join(str(cell) for cell in row))
        if largest is None or len(graph.ops) > len(largest.ops):
            largest = graph
    rate = _estimates_per_second(largest, args.kernels)
    print(f"\nspeed: {rate:,.0f} estimates/s (arena for both targets + model size, one core) "
          f"on {largest.name} ({len(largest.ops)} ops, {len(largest.tensors)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
