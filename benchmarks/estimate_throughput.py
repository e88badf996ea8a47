"""Estimator throughput: full estimates per second for random architectures of a space, one core.

    .venv/bin/python benchmarks/estimate_throughput.py [--archs 500] [--space mobilenetv2] [--board NAME]
        [--runtime tflm-cmsis-nn] [--repeat 3]

A full estimate turns an architecture into its :class:`~mcunas.estimators.cost.Cost` (32-bit and
host arena, model and runtime flash, latency, budget checks), two ways, timed in the same run:

* reference: ``estimate(space.graph(arch), board)`` -- graph construction, then the estimators
  on the graph;
* fast: ``mcunas.estimators.fast.estimate_arch(space, arch, board)`` -- the same Cost (checked
  here on every architecture) from cached parts. Warm: the parts cache already holds the
  architectures' parts (a search past its first trials); cold: from an empty cache (each part
  built and read by the reference estimators once).

Architectures are drawn by Optuna's RandomSampler from the space with its default options
(not timed). The process is pinned to one CPU where the OS allows it. Reported: estimates/s and
microseconds per estimate of the whole and of each part, each timed separately over the same
architectures (best of ``--repeat`` passes) in CPU time of this process (``time.process_time``:
on a shared, loaded machine wall time also counts the time spent waiting for the CPU) and, for
the wholes, also in wall time. Compare the two paths by their ratio in one run: the machine's
load moves both.
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
from mcunas.estimators import fast, flash, memory  # noqa: E402
from mcunas.estimators.cost import cost_of  # noqa: E402
from mcunas.estimators.latency import default_profile  # noqa: E402
from mcunas.spaces import get_space  # noqa: E402


def sample_archs(count: int, seed: int, space_name: str = "mobilenetv2") -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(count):
        trial = study.ask()
        archs.append(space.sample(trial))
        study.tell(trial, 0.0)
    return archs


def best_seconds(work: Callable[[], object], repeat: int, before: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the pass with the least CPU time; ``before`` runs untimed
    before each pass."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        before()
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=500)
    parser.add_argument("--space", default="mobilenetv2")
    parser.add_argument("--board", default="arduino-nano-33-ble-sense")
    parser.add_argument("--runtime", default="tflm-cmsis-nn")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    space = get_space(args.space)
    board = load_board(args.board)
    runtime = args.runtime
    kernels = "cmsis-nn" if runtime == "tflm-cmsis-nn" else "reference"
    archs = sample_archs(args.archs, args.seed, args.space)
    graphs = [space.graph(a) for a in archs]
    profile = default_profile(board.core, runtime)
    n = len(archs)
    mismatches = sum(fast.estimate_arch(space, a, board, runtime) != estimate(g, board, runtime) for a, g in zip(archs, graphs))
    figures: list = []

    def new_figures() -> None:  # fresh ones for each pass (figures keep the arenas they computed)
        figures[:] = [fast.arch_figures(space, a) for a in archs]

    wholes = {
        "reference: estimate(space.graph(arch))": (lambda: [estimate(space.graph(a), board, runtime) for a in archs], None),
        "fast, warm: estimate_arch(arch)": (lambda: [fast.estimate_arch(space, a, board, runtime) for a in archs], None),
        "fast, cold (empty parts cache)": (lambda: [fast.estimate_arch(space, a, board, runtime) for a in archs],
                                           fast.clear_cache),
    }
    parts = {
        "reference": {
            "graph construction": (lambda: [space.graph(a) for a in archs], None),
            "estimate() on a built graph": (lambda: [estimate(g, board, runtime) for g in graphs], None),
            "  arena, 32-bit target": (lambda: [memory.arena_bytes(g, target="cortex-m", kernels=kernels) for g in graphs],
                                       None),
            "  arena, 64-bit host": (lambda: [memory.arena_bytes(g, target="host", kernels="reference") for g in graphs],
                                     None),
            "  flash (model + runtime code)": (lambda: [
                (flash.model_bytes(g), flash.runtime_code_bytes(g.op_kinds(), kernels, board.core)) for g in graphs
            ], None),
            "  latency": (lambda: [profile.estimate(g, board) for g in graphs], None),
        },
        "fast (warm)": {
            "layers: space.spec(arch)": (lambda: [space.spec(a, name="") for a in archs], None),
            "parts: arch_figures(arch), spec included": (lambda: [fast.arch_figures(space, a) for a in archs], None),
            "cost_of(figures)": (lambda: [cost_of(f, board, runtime) for f in figures], new_figures),
            "  arena, both builds": (lambda: [f.arena_bytes_pair(kernels) for f in figures], new_figures),
            "  flash (model + runtime code)": (lambda: [
                (f.model_bytes(), flash.runtime_code_bytes(f.op_kinds(), kernels, board.core)) for f in figures
            ], new_figures),
            "  latency": (lambda: [f.latency(profile, board) for f in figures], new_figures),
        },
    }
    ops = sum(len(g.ops) for g in graphs) / n
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, Python {platform.python_version()}, pinned to 1 CPU")
    print(f"{n} random {args.space} archs (seed {args.seed}), {ops:.1f} ops per graph on average, board {board.name}, {runtime}")
    print(f"load average before: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    print(f"fast Cost == reference Cost on {n - mismatches} of {n} archs; {fast.cache_info()['parts']} distinct parts")
    seconds = {}
    for name, (work, before) in wholes.items():
        cpu, wall = best_seconds(work, args.repeat, before or (lambda: None))
        seconds[name] = cpu
        print(f"{name:40s} {n / cpu:>8,.0f} estimates/s CPU time ({1e6 * cpu / n:7.1f} us each); {n / wall:>8,.0f} /s wall time")
    reference, warm = seconds["reference: estimate(space.graph(arch))"], seconds["fast, warm: estimate_arch(arch)"]
    print(f"speed-up of the fast path, warm: {reference / warm:.1f}x; cold: {reference / seconds['fast, cold (empty parts cache)']:.1f}x")
    for group, works in parts.items():
        print(f"{group}:")
        for name, (work, before) in works.items():
            cpu, _ = best_seconds(work, args.repeat, before or (lambda: None))
            print(f"  {name:42s} {1e6 * cpu / n:9.1f} us/arch  ({n / cpu:>10,.0f} /s)")
    print(f"load average after: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
