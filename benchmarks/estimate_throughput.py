"""Estimator throughput: full estimates per second for random MobileNetV2 architectures, one core.

    .venv/bin/python benchmarks/estimate_throughput.py [--archs 500] [--board NAME] [--repeat 3]

A full estimate is graph construction (``Space.graph(arch)``) + ``estimate()`` (32-bit and host
arena, model and runtime flash, latency, budget checks). Architectures are drawn by Optuna's
RandomSampler from the default mobilenetv2 space (not timed). The process is pinned to one CPU
where the OS allows it. Reported: estimates/s of the whole, and microseconds per estimate of
each part, timed separately over the same graphs (best of ``--repeat`` passes), in CPU time of
this process (``time.process_time``: on a shared, loaded machine wall time also counts the time
spent waiting for the CPU) and, for the whole, also in wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcunas.estimators import estimate, load_board  # noqa: E402
from mcunas.estimators import flash, memory  # noqa: E402
from mcunas.estimators.latency import default_profile  # noqa: E402
from mcunas.spaces import get_space  # noqa: E402


def sample_archs(count: int, seed: int) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space("mobilenetv2")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(count):
        trial = study.ask()
        archs.append(space.sample(trial))
        study.tell(trial, 0.0)
    return archs


def best_seconds(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the pass with the least CPU time."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=500)
    parser.add_argument("--board", default="arduino-nano-33-ble-sense")
    parser.add_argument("--runtime", default="tflm-cmsis-nn")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    space = get_space("mobilenetv2")
    board = load_board(args.board)
    kernels = "cmsis-nn" if args.runtime == "tflm-cmsis-nn" else "reference"
    archs = sample_archs(args.archs, args.seed)
    graphs = [space.graph(a) for a in archs]
    profile = default_profile(board.core, args.runtime)
    n = len(archs)

    full_cpu, full_wall = best_seconds(lambda: [estimate(space.graph(a), board, args.runtime) for a in archs], args.repeat)
    parts = {
        "graph construction": lambda: [space.graph(a) for a in archs],
        "estimate() on a built graph": lambda: [estimate(g, board, args.runtime) for g in graphs],
        "  arena, 32-bit target": lambda: [memory.arena_bytes(g, target="cortex-m", kernels=kernels) for g in graphs],
        "  arena, 64-bit host": lambda: [memory.arena_bytes(g, target="host", kernels="reference") for g in graphs],
        "  flash (model + runtime code)": lambda: [
            (flash.model_bytes(g), flash.runtime_code_bytes(g.op_kinds(), kernels, board.core)) for g in graphs
        ],
        "  latency": lambda: [profile.estimate(g, board) for g in graphs],
    }
    ops = sum(len(g.ops) for g in graphs) / n
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, Python {platform.python_version()}, pinned to 1 CPU")
    print(f"{n} random mobilenetv2 archs (seed {args.seed}), {ops:.1f} ops per graph on average, board {board.name}, {args.runtime}")
    print(f"load average before: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    print(f"full estimate (graph + estimate): {n / full_cpu:,.0f} estimates/s CPU time ({1e6 * full_cpu / n:,.1f} us each);"
          f" {n / full_wall:,.0f} /s wall time")
    for name, work in parts.items():
        seconds, _ = best_seconds(work, args.repeat)
        print(f"  {name:32s} {1e6 * seconds / n:9.1f} us/arch  ({n / seconds:>10,.0f} /s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
