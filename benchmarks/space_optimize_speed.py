"""Wall and CPU time of ``mcunas space optimize`` on the grid of issue 14's example, one core.

    .venv/bin/python benchmarks/space_optimize_speed.py [--samples 1000] [--out runs/bench-space-speed]

The example: 10 input resolutions x 8 width multipliers x ``--samples`` architectures x 3 boards
of the mobilenetv2 space (its default options; digits, the dataset bundled with scikit-learn,
fixes one input channel and ten classes). Every estimate is a full Cost on a board (both arenas,
planned activations, parameter bytes, flash, latency with its interval, the budget check); the
optimizer builds each architecture's figures once and costs them on each board
(:func:`mcunas.search.space_optimize.estimate_arch`, the fast path of
:mod:`mcunas.estimators.fast`, from an empty parts cache: every cell brings its own parts).
Reported: the optimizer's own loop time (``SpaceResult.seconds``: drawing the architectures and
estimating them) and the CPU time of the whole call (data loading and writing the folder
included). The process is pinned to one CPU where the OS allows it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcunas.config import parse_experiment  # noqa: E402
from mcunas.search.space_optimize import optimize_space  # noqa: E402

RESOLUTIONS = [32, 40, 48, 56, 64, 72, 80, 88, 96, 112]
WIDTHS = [0.35, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
BOARDS = ["arduino-nano-33-ble-sense", "nucleo-f446re", "nucleo-h743zi2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="architectures per cell")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-space-speed"))
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    experiment = parse_experiment({
        "name": "space_speed", "dataset": {"name": "digits"}, "space": {"name": "mobilenetv2"},
        "boards": BOARDS, "runtime": "tflm-cmsis-nn", "objectives": ["accuracy", "latency_ms"],
    })
    shutil.rmtree(args.out, ignore_errors=True)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    result = optimize_space(experiment, args.out, samples=args.samples, resolutions=RESOLUTIONS, widths=WIDTHS,
                            progress=False)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, pinned to one CPU; "
          f"load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"grid: {len(RESOLUTIONS)} resolutions x {len(WIDTHS)} widths x {args.samples} samples x {len(BOARDS)} boards\n")
    print("| estimates | optimizer loop (s) | estimates/s (loop) | whole call, CPU (s) | whole call, wall (s) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(f"| {result.estimates:,} | {result.seconds:.1f} | {result.estimates / result.seconds:,.0f} | {cpu:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
